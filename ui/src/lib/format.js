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

/** Seconds → "0:07", "12:30", "1:02:03". */
export function duration(secs) {
  const s = Math.max(0, Math.floor(Number(secs) || 0))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

/** Seconds from `iso` until `now` (ms since the epoch). */
export function secondsSince(iso, now = Date.now()) {
  const t = Date.parse(iso)
  return Number.isNaN(t) ? 0 : Math.max(0, (now - t) / 1000)
}

/** A `YYYY-MM-DD` date input's day as the RFC 3339 instant of its local midnight ('' stays ''). */
export function localDayStart(day, plusDays = 0) {
  if (!day) return ''
  const [y, m, d] = day.split('-').map(Number)
  if (!y || !m || !d) return ''
  return new Date(y, m - 1, d + plusDays).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** snake_case → "Sentence case". */
export function words(s) {
  if (!s) return ''
  const t = String(s).replace(/_/g, ' ')
  return t.charAt(0).toUpperCase() + t.slice(1)
}
