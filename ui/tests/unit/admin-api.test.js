// The API modules of the Calls, Numbers and Settings pages: each sends the
// method, path, query and body its server route expects.
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as calls from '../../src/api/calls.js'
import * as sip from '../../src/api/sip.js'
import * as blocklist from '../../src/api/blocklist.js'
import * as system from '../../src/api/system.js'
import * as twilio from '../../src/api/twilio.js'
import * as dids from '../../src/api/dids.js'
import { duration, localDayStart, secondsSince, words } from '../../src/lib/format.js'

let sent
afterEach(() => vi.unstubAllGlobals())
function stub(body = {}) {
  sent = vi.fn(async () => ({
    ok: true,
    status: 200,
    headers: { get: () => null },
    text: async () => JSON.stringify(body),
  }))
  vi.stubGlobal('fetch', sent)
}
const call = (i = 0) => {
  const [path, init] = sent.mock.calls[i]
  return { path, method: init.method, body: init.body === undefined ? undefined : init.body, type: init.headers['Content-Type'] }
}

describe('calls', () => {
  it('holds with {on}, transfers with {to}, hangs up with DELETE', async () => {
    stub()
    await calls.hold(7, true)
    await calls.transfer(7, 'kitchen')
    await calls.transfer(7, 'kitchen', 'a')
    await calls.hangUp(7)
    expect(call(0)).toMatchObject({ path: '/api/calls/7/hold', method: 'POST', body: '{"on":true}' })
    expect(call(1)).toMatchObject({ path: '/api/calls/7/transfer', body: '{"to":"kitchen"}' })
    expect(call(2).body).toBe('{"to":"kitchen","side":"a"}')
    expect(call(3)).toMatchObject({ path: '/api/calls/7', method: 'DELETE' })
  })

  it('pages the history by cursor and exports with the same filters', async () => {
    stub({ items: [], next_cursor: null, per_page: 20 })
    await calls.cdrs({ direction: 'inbound', number: '+15551230001', cursor: 'abc', since: '' })
    expect(call().path).toBe('/api/cdrs?direction=inbound&number=%2B15551230001&cursor=abc')
    expect(calls.cdrExportUrl({ disposition: 'missed', number: '' })).toBe('/api/cdrs/export?disposition=missed')
  })
})

describe('sip bans', () => {
  it('unbans an address, IPv6 escaped', async () => {
    stub({ unbanned: '2001:db8::1' })
    await sip.unban('2001:db8::1')
    expect(call()).toMatchObject({ path: '/api/sip/bans/2001%3Adb8%3A%3A1', method: 'DELETE' })
  })
})

describe('blocklist', () => {
  it('adds, removes and checks (a + survives the query string)', async () => {
    stub({ number: '+1900', blocked: true, entry: null })
    await blocklist.add({ pattern: '+1900', pattern_type: 'prefix' })
    await blocklist.remove(3)
    const r = await blocklist.check('+19005551234')
    expect(call(0)).toMatchObject({ path: '/api/blocklist', method: 'POST', body: '{"pattern":"+1900","pattern_type":"prefix"}' })
    expect(call(1)).toMatchObject({ path: '/api/blocklist/3', method: 'DELETE' })
    expect(call(2).path).toBe('/api/blocklist/check?number=%2B19005551234')
    expect(r.blocked).toBe(true)
  })
})

describe('system', () => {
  it('retries a job, saves startup settings, previews hold music', async () => {
    stub({ items: [] })
    await system.retryJob(12)
    await system.saveStartupSettings({ 'sip.tls_only': true, 'twilio.sip_mode': null })
    await system.uploadHoldMusic(new Blob(['RIFF'], { type: 'audio/wav' }))
    expect(call(0)).toMatchObject({ path: '/api/system/outbox/12/retry', method: 'POST' })
    expect(call(1)).toMatchObject({
      path: '/api/system/startup-settings',
      method: 'PUT',
      body: '{"sip.tls_only":true,"twilio.sip_mode":null}',
    })
    expect(call(2)).toMatchObject({ path: '/api/system/hold-music', method: 'PUT', type: 'audio/wav' })
    expect(system.holdMusicAudioUrl(5)).toBe('/api/system/hold-music/audio?v=5')
  })
})

describe('numbers', () => {
  it('reads connection states and a greeting', async () => {
    stub({ twilio: 'ok', message: null, items: [] })
    await twilio.connections()
    await dids.greeting(4)
    expect(call(0).path).toBe('/api/twilio/connections')
    expect(call(1).path).toBe('/api/dids/4/greeting')
  })
})

describe('format', () => {
  it('durations, elapsed time, local days, words', () => {
    expect([duration(7), duration(750), duration(3723)]).toEqual(['0:07', '12:30', '1:02:03'])
    expect(secondsSince('2026-01-01T00:00:10Z', Date.parse('2026-01-01T00:01:00Z'))).toBe(50)
    const start = localDayStart('2026-03-04')
    expect(new Date(start).getDate()).toBe(4)
    expect(new Date(start).getHours()).toBe(0)
    expect(Date.parse(localDayStart('2026-03-04', 1)) - Date.parse(start)).toBeGreaterThanOrEqual(23 * 3600e3)
    expect(start).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    expect(localDayStart('')).toBe('')
    expect(words('no_answer')).toBe('No answer')
  })
})
