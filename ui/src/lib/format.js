// Display formatting shared by the pages: dates in the browser's locale and
// time zone, durations as m:ss / h:mm:ss.

/** `2026-12-01T20:04:55Z` → "1 Dec 2026, 20:04" (local time); '' for nothing. */
export function dateTime(iso) {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return String(iso)
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
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
