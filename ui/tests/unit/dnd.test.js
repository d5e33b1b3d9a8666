// The header's own-DND state: loaded for the account, refetched when the
// server sends a `dnd` event, set with PUT /api/users/{id}/dnd.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { stream } from '../../src/composables/events.js'
import { DND_EVENTS, useOwnDnd } from '../../src/composables/dnd.js'

class FakeSource {
  static last = null
  constructor() {
    this.listeners = {}
    this.readyState = 1
    FakeSource.last = this
  }
  addEventListener(type, fn) {
    ;(this.listeners[type] ||= []).push(fn)
  }
  close() {}
  emit(type, data) {
    for (const fn of this.listeners[type] || []) fn({ data: JSON.stringify(data), lastEventId: '1' })
  }
}

let server
beforeEach(() => {
  stream.EventSource = FakeSource
  server = { items: [{ scope: 'user', subject_id: 4, on: false, schedule: null, active: false }] }
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path, init) => {
      let body = server
      if (init.method === 'PUT') {
        const b = JSON.parse(init.body)
        body = { scope: 'user', subject_id: 4, on: b.on, schedule: b.schedule, active: b.on }
        server = { items: [body] }
      }
      return { ok: true, status: 200, headers: { get: () => null }, text: async () => JSON.stringify(body) }
    }),
  )
})
afterEach(() => vi.unstubAllGlobals())
const flush = async () => {
  for (let i = 0; i < 6; i++) await Promise.resolve()
}

describe('own DND', () => {
  it('listens to the dnd events', () => {
    expect(DND_EVENTS).toEqual(['dnd'])
  })
  it('loads, follows a change made elsewhere, and sets', async () => {
    const own = useOwnDnd()
    own.start(4)
    await flush()
    expect(own.available.value).toBe(true)
    expect(own.on.value).toBe(false)
    // A phone dialled *78 for the account (or another tab switched it).
    server = { items: [{ scope: 'user', subject_id: 4, on: true, schedule: null, active: true }] }
    FakeSource.last.emit('dnd', { scope: 'user', subject_id: 4, on: true, active: true })
    await flush()
    expect(own.active.value).toBe(true)
    await own.set(false)
    expect(fetch.mock.calls.at(-1)[0]).toBe('/api/users/4/dnd')
    expect(own.on.value).toBe(false)
    own.stop()
  })
})
