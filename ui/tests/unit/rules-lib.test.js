// The week grid ↔ schedule conversion, rules in words, the error paths and
// the API modules of the rule pages.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { dayList, emptyGrid, fromGrid, scheduleText, toGrid, windowText } from '../../src/lib/schedule.js'
import { actionText, errorsUnder, normaliseErrors, ruleText } from '../../src/lib/rules.js'
import * as rules from '../../src/api/rules.js'
import * as dnd from '../../src/api/dnd.js'
import * as autoReplies from '../../src/api/autoReplies.js'

const paint = (cells) => {
  const g = emptyGrid()
  for (const [d, from, to] of cells) for (let h = from; h < to; h++) g[d][h] = true
  return g
}

describe('week grid', () => {
  it('turns runs into windows, grouping days with the same hours', () => {
    expect(fromGrid(paint([[0, 9, 17], [1, 9, 17], [2, 9, 17]]))).toEqual([
      { days: ['mon', 'tue', 'wed'], from: '09:00', to: '17:00' },
    ])
  })
  it('joins an evening with the next early morning into one window across midnight', () => {
    const g = paint([[4, 21, 24], [5, 0, 7]])
    expect(fromGrid(g)).toEqual([{ days: ['fri'], from: '21:00', to: '07:00' }])
    expect(toGrid({ weekly: fromGrid(g) }).grid).toEqual(g)
  })
  it('joins Sunday night with Monday morning', () => {
    expect(fromGrid(paint([[6, 22, 24], [0, 0, 6]]))).toEqual([{ days: ['sun'], from: '22:00', to: '06:00' }])
  })
  it('does not join when the result would read as a same-day window', () => {
    expect(fromGrid(paint([[0, 10, 24], [1, 0, 12]]))).toEqual([
      { days: ['mon'], from: '10:00', to: '00:00' },
      { days: ['tue'], from: '00:00', to: '12:00' },
    ])
  })
  it('writes a whole day as 00:00–00:00', () => {
    expect(fromGrid(paint([[5, 0, 24], [6, 0, 24]]))).toEqual([{ days: ['sat', 'sun'], from: '00:00', to: '00:00' }])
    expect(toGrid({ weekly: [{ days: ['sat'], from: '00:00', to: '00:00' }] }).grid[5].every(Boolean)).toBe(true)
  })
  it('paints a window across midnight on the next day, wrapping Sunday to Monday', () => {
    const { grid, rounded } = toGrid({ weekly: [{ days: ['sun'], from: '23:00', to: '01:00' }] })
    expect(grid[6][23]).toBe(true)
    expect(grid[0][0]).toBe(true)
    expect(grid[0][1]).toBe(false)
    expect(rounded).toBe(false)
  })
  it('rounds a window off the hour outwards and says so', () => {
    const { grid, rounded } = toGrid({ weekly: [{ days: ['mon'], from: '08:30', to: '09:15' }] })
    expect(rounded).toBe(true)
    expect(grid[0].slice(8, 10)).toEqual([true, true])
  })
  it('an empty grid is no window', () => {
    expect(fromGrid(emptyGrid())).toEqual([])
  })
})

describe('schedules in words', () => {
  it('names day ranges', () => {
    expect(dayList(['mon', 'tue', 'wed', 'thu', 'fri'])).toBe('Mon–Fri')
    expect(dayList(['mon', 'wed'])).toBe('Mon, Wed')
    expect(dayList(['sat', 'sun'])).toBe('Sat, Sun')
  })
  it('says when a window ends the next day, and dates with their names', () => {
    expect(windowText({ days: ['fri'], from: '21:00', to: '07:00' })).toBe('Fri 21:00–07:00 (next day)')
    expect(windowText({ days: ['mon'], from: '18:00', to: '00:00' })).toBe('Mon 18:00–24:00')
    expect(scheduleText({ weekly: [], dates: [{ from: '2026-12-24', to: '2026-12-26', label: 'Christmas' }] })).toBe(
      'Christmas (2026-12-24 to 2026-12-26)',
    )
    expect(scheduleText({ weekly: [], dates: [] })).toBe('never')
  })
})

describe('rules in words', () => {
  const phones = [{ id: 1, name: 'Kitchen' }, { id: 2, name: 'Bedroom' }]
  it('describes conditions and the action', () => {
    const r = {
      conditions: [{ type: 'caller_list', list_id: 3 }, { type: 'time', outside: false, schedule: { weekly: [{ days: ['mon'], from: '21:00', to: '07:00' }], dates: [] } }],
      action: { type: 'ring', devices: [2] },
    }
    expect(ruleText(r, { phones, lists: [{ id: 3, name: 'VIP', numbers: [] }] })).toBe(
      'If the caller is in “VIP” and the call comes during Mon 21:00–07:00 (next day): Ring Bedroom.',
    )
    expect(ruleText({ conditions: [], action: { type: 'voicemail' } })).toBe('Always: Send to voicemail.')
    expect(actionText({ type: 'sequence', steps: [{ devices: [1], secs: 15 }, { devices: [2], secs: 20 }] }, { phones })).toBe(
      'ring Kitchen for 15 s, then Bedroom for 20 s',
    )
  })
  it('normalises error paths and picks those of a sub-editor', () => {
    const e = normaliseErrors({ 'conditions[1].value': 'bad', 'action.steps[0].secs': 'too long', name: 'empty' })
    expect(e).toEqual({ 'conditions.1.value': 'bad', 'action.steps.0.secs': 'too long', name: 'empty' })
    expect(errorsUnder(e, 'conditions.1')).toEqual({ value: 'bad' })
    expect(errorsUnder(e, 'action')).toEqual({ 'steps.0.secs': 'too long' })
  })
})

describe('API modules', () => {
  let sent
  afterEach(() => vi.unstubAllGlobals())
  function stub(body = {}) {
    sent = vi.fn(async () => ({ ok: true, status: 200, headers: { get: () => null }, text: async () => JSON.stringify(body) }))
    vi.stubGlobal('fetch', sent)
  }
  const call = (i) => ({ path: sent.mock.calls[i][0], method: sent.mock.calls[i][1].method, body: sent.mock.calls[i][1].body })
  it('rules, order, simulator and caller lists', async () => {
    stub()
    await rules.list(1)
    await rules.reorder(1, [3, 2])
    await rules.simulate(1, { from: 'anonymous', caller_name: null, at: null, spam_score: null, verstat: null })
    await rules.update(7, { name: 'x' })
    await rules.removeCallerList(4)
    expect(call(0)).toMatchObject({ path: '/api/dids/1/rules', method: 'GET' })
    expect(call(1)).toMatchObject({ path: '/api/dids/1/rules/order', method: 'PUT', body: '{"ids":[3,2]}' })
    expect(call(2)).toMatchObject({ path: '/api/dids/1/simulate', method: 'POST' })
    expect(call(3)).toMatchObject({ path: '/api/rules/7', method: 'PUT' })
    expect(call(4)).toMatchObject({ path: '/api/caller-lists/4', method: 'DELETE' })
  })
  it('DND and auto-replies', async () => {
    stub()
    await dnd.setFor('system', 0, { on: true, schedule: null })
    await dnd.setFor('user', 5, { on: false, schedule: null })
    await dnd.setFor('device', 9, { on: true, schedule: null })
    await autoReplies.create(1, { trigger: { type: 'dnd' }, reply_text: 'x', enabled: true })
    await autoReplies.remove(2)
    expect(call(0)).toMatchObject({ path: '/api/dnd/system', method: 'PUT', body: '{"on":true,"schedule":null}' })
    expect(call(1).path).toBe('/api/users/5/dnd')
    expect(call(2).path).toBe('/api/devices/9/dnd')
    expect(call(3)).toMatchObject({ path: '/api/dids/1/auto-replies', method: 'POST' })
    expect(call(4)).toMatchObject({ path: '/api/auto-replies/2', method: 'DELETE' })
  })
})
