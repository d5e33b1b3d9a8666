// Schedules (the shared model of rules, DND and after-hours replies) and
// the week grid that edits them: 7 days × 24 hours of painted cells.
//
// A weekly window `from`–`to` belongs to the day it starts on; `to` ≤ `from`
// crosses midnight (fri 21:00–07:00 covers Saturday until 07:00) and
// 00:00–00:00 is the whole day. `dates` are whole local days, inclusive.

/**
 * @typedef {'mon'|'tue'|'wed'|'thu'|'fri'|'sat'|'sun'} Day
 * @typedef {{ days: Day[], from: string, to: string }} Window
 * @typedef {{ from: string, to: string, label?: string }} DateRange
 * @typedef {{ weekly: Window[], dates: DateRange[] }} Schedule
 * @typedef {boolean[][]} Grid  grid[day 0..6 from Monday][hour 0..23]
 */

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
export const DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']
export const DAY_SHORT = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']

/** @returns {Schedule} */
export const emptySchedule = () => ({ weekly: [], dates: [] })

/** @returns {Grid} */
export const emptyGrid = () => DAYS.map(() => Array(24).fill(false))

/** "07:30" → 450 minutes, or null. */
export function minutes(hhmm) {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm || '')
  if (!m) return null
  const h = Number(m[1])
  const min = Number(m[2])
  return h < 24 && min < 60 ? h * 60 + min : null
}

const hh = (h) => `${String(h % 24).padStart(2, '0')}:00`

/**
 * The grid a schedule's weekly windows paint. A window that does not start
 * or end on the hour paints every hour it touches; `rounded` says so.
 * @param {Schedule|null} schedule
 * @returns {{ grid: Grid, rounded: boolean }}
 */
export function toGrid(schedule) {
  const grid = emptyGrid()
  let rounded = false
  for (const w of (schedule && schedule.weekly) || []) {
    const from = minutes(w.from)
    const to = minutes(w.to)
    if (from === null || to === null) continue
    if (from % 60 || to % 60) rounded = true
    // End in minutes from the start day's midnight (up to 48 h).
    const end = to > from ? to : to + 24 * 60
    for (const day of w.days || []) {
      const d = DAYS.indexOf(day)
      if (d < 0) continue
      for (let h = Math.floor(from / 60); h * 60 < end; h++) {
        grid[(d + Math.floor(h / 24)) % 7][h % 24] = true
      }
    }
  }
  return { grid, rounded }
}

/**
 * The weekly windows of a painted grid: each day's runs of hours, a run
 * reaching midnight joined with the next day's run from midnight (when the
 * result still reads as crossing midnight), and days with the same window
 * grouped into one.
 * @param {Grid} grid
 * @returns {Window[]}
 */
export function fromGrid(grid) {
  // Runs per day: [startHour, endHour) with end up to 24.
  const runs = grid.map((hours) => {
    const out = []
    let start = null
    for (let h = 0; h <= 24; h++) {
      const on = h < 24 && hours[h]
      if (on && start === null) start = h
      if (!on && start !== null) {
        out.push([start, h])
        start = null
      }
    }
    return out
  })
  // Join a day's last run "21–24" with the next day's first run "0–7" into
  // 21:00–07:00 (only when the join ends no later than it starts, or it
  // would read as a same-day window).
  const joined = runs.map((r) => {
    const last = r[r.length - 1]
    return !!last && last[1] === 24 && last[0] > 0
  })
  const joins = joined.map((can, d) => {
    const first = runs[(d + 1) % 7][0]
    return can && !!first && first[0] === 0 && first[1] < 24 && first[1] <= runs[d][runs[d].length - 1][0]
  })
  /** @type {{ day: number, from: number, to: number }[]} */
  const spans = []
  for (let d = 0; d < 7; d++) {
    const prev = (d + 6) % 7
    runs[d].forEach(([s, e], i) => {
      if (i === 0 && joins[prev]) return // part of the previous day's window
      if (i === runs[d].length - 1 && joins[d]) {
        spans.push({ day: d, from: s, to: runs[(d + 1) % 7][0][1] })
      } else {
        spans.push({ day: d, from: s, to: e === 24 ? 0 : e })
      }
    })
  }
  const groups = new Map()
  for (const sp of spans) {
    const key = `${hh(sp.from)}-${hh(sp.to)}`
    if (!groups.has(key)) groups.set(key, { days: [], from: hh(sp.from), to: hh(sp.to) })
    const g = groups.get(key)
    if (!g.days.includes(DAYS[sp.day])) g.days.push(DAYS[sp.day])
  }
  return [...groups.values()]
    .map((g) => ({ ...g, days: DAYS.filter((d) => g.days.includes(d)) }))
    .sort((a, b) => DAYS.indexOf(a.days[0]) - DAYS.indexOf(b.days[0]) || a.from.localeCompare(b.from))
}

/** "mon,tue,wed,thu,fri" → "Mon–Fri"; "sat,sun" → "Sat–Sun"; "mon,wed" → "Mon, Wed". */
export function dayList(days) {
  const idx = DAYS.map((d, i) => (days.includes(d) ? i : -1)).filter((i) => i >= 0)
  if (idx.length === 7) return 'Every day'
  const parts = []
  for (let i = 0; i < idx.length; ) {
    let j = i
    while (j + 1 < idx.length && idx[j + 1] === idx[j] + 1) j++
    parts.push(j - i >= 2 ? `${DAY_SHORT[idx[i]]}–${DAY_SHORT[idx[j]]}` : idx.slice(i, j + 1).map((k) => DAY_SHORT[k]).join(', '))
    i = j + 1
  }
  return parts.join(', ')
}

/** One window in words: "Mon–Fri 21:00–07:00 (next day)", "Sat all day". */
export function windowText(w) {
  const days = dayList(w.days || [])
  if (w.from === '00:00' && w.to === '00:00') return `${days} all day`
  const f = minutes(w.from)
  const t = minutes(w.to)
  const crosses = f !== null && t !== null && t <= f && t !== 0
  return `${days} ${w.from}–${w.to === '00:00' ? '24:00' : w.to}${crosses ? ' (next day)' : ''}`
}

/** A whole schedule in words, or "never" when it is empty. */
export function scheduleText(s) {
  if (!s) return 'never'
  const parts = (s.weekly || []).map(windowText)
  for (const d of s.dates || []) {
    const span = d.from === d.to || !d.to ? d.from : `${d.from} to ${d.to}`
    parts.push(d.label ? `${d.label} (${span})` : span)
  }
  return parts.length ? parts.join('; ') : 'never'
}

/** Whether a schedule covers no time at all. */
export const isEmpty = (s) => !s || (!(s.weekly || []).length && !(s.dates || []).length)
