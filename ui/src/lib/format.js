// Small formatting helpers shared by the pages.

/** 1536 → "1.5 KiB" */
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`
}

/** An RFC 3339 time in the browser's locale, or '—'. */
export function dateTime(s) {
  if (!s) return '—'
  const d = new Date(s)
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString()
}

/** Seconds from now until an RFC 3339 time ("in 54 s", "in 3 min"), or 'expired'. */
export function fromNow(s, now = Date.now()) {
  const t = Date.parse(s)
  if (Number.isNaN(t)) return '—'
  const secs = Math.round((t - now) / 1000)
  if (secs <= 0) return 'expired'
  if (secs < 120) return `in ${secs} s`
  if (secs < 7200) return `in ${Math.round(secs / 60)} min`
  return `in ${Math.round(secs / 3600)} h`
}
