// The notification pages' logic (src/lib/notify.js) and API modules: what a
// failed test means in words, the settings bodies (secrets write-only), the
// delivery log's words.
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as notifications from '../../src/api/notifications.js'
import {
  deliveryState,
  deliveryTarget,
  emailChange,
  eventLabel,
  outcomeText,
  pushChange,
  testOutcome,
} from '../../src/lib/notify.js'
import { navEntries } from '../../src/router/routes.js'

let sent
afterEach(() => vi.unstubAllGlobals())
function stub(body = {}) {
  sent = vi.fn(async () => ({ ok: true, status: 200, headers: { get: () => null }, text: async () => JSON.stringify(body) }))
  vi.stubGlobal('fetch', sent)
}
const call = (i = 0) => {
  const [path, init] = sent.mock.calls[i]
  return { path, method: init.method, body: init.body }
}

describe('api', () => {
  it('sends the test, the log query and the webhook routes as the server expects', async () => {
    stub({})
    await notifications.sendTest('email', 'a@b.c')
    await notifications.sendTest('push', 'ignored')
    await notifications.deliveries({ limit: 50, before: 12 })
    await notifications.addWebhook({ url: 'https://x.example/h', events: ['voicemail'] })
    await notifications.updateWebhook(3, { enabled: false })
    await notifications.removeWebhook(3)
    await notifications.testWebhook(3)
    expect(call(0)).toMatchObject({ path: '/api/notifications/test', method: 'POST', body: '{"channel":"email","to":"a@b.c"}' })
    expect(call(1).body).toBe('{"channel":"push"}')
    expect(call(2).path).toBe('/api/notifications?limit=50&before=12')
    expect(call(3)).toMatchObject({ path: '/api/webhooks', method: 'POST', body: '{"url":"https://x.example/h","events":["voicemail"]}' })
    expect(call(4)).toMatchObject({ path: '/api/webhooks/3', method: 'PUT', body: '{"enabled":false}' })
    expect(call(5)).toMatchObject({ path: '/api/webhooks/3', method: 'DELETE' })
    expect(call(6)).toMatchObject({ path: '/api/webhooks/3/test', method: 'POST' })
  })
})

describe('navigation', () => {
  it('offers the notification settings to admins only', () => {
    expect(navEntries('settings', 'admin').map((e) => e.path)).toContain('/settings/notifications')
    expect(navEntries('settings', 'user')).toEqual([])
  })
})

describe('test outcomes', () => {
  it('says what went wrong from the reason, with the server message beside it', () => {
    expect(testOutcome({ delivered: true, detail: '250 2.0.0 queued' })).toEqual({ tone: 'ok', text: 'Delivered.', detail: '250 2.0.0 queued' })
    const auth = outcomeText({ delivered: false, reason: 'auth', message: 'the SMTP server refused the user name or password' })
    expect(auth.ok).toBe(false)
    expect(auth.text).toMatch(/^The server refused the user name, password or token\. \(the SMTP server refused/)
    expect(testOutcome({ delivered: false, reason: 'tls' }).text).toMatch(/certificate/)
    expect(testOutcome({ delivered: false, reason: 'connect' }).text).toMatch(/could not connect/)
    expect(testOutcome({ delivered: false, reason: 'something_new' }).text).toBe('The server answered with an error.')
  })
})

describe('settings bodies', () => {
  const form = () => ({
    provider: 'smtp',
    transcriptWait: ' 90 ',
    smtp: { host: ' mail.example.org ', port: '587', security: 'starttls', username: '', password: '', from: 'home@example.org' },
    postmark: { server_token: '', from: '' },
  })
  it('sends plain fields as they stand, empty as null, numbers as numbers, and no secret nobody typed', () => {
    expect(emailChange(form())).toEqual({
      notify: { email_provider: 'smtp', transcript_wait_secs: 90 },
      smtp: { host: 'mail.example.org', port: 587, security: 'starttls', username: null, from: 'home@example.org' },
      postmark: { from: null },
    })
  })
  it('sends a typed secret verbatim, and "off" as null', () => {
    const f = form()
    f.provider = ''
    f.smtp.password = ' pw with spaces '
    f.postmark.server_token = 'tok'
    const b = emailChange(f)
    expect(b.notify.email_provider).toBe(null)
    expect(b.smtp.password).toBe(' pw with spaces ')
    expect(b.postmark.server_token).toBe('tok')
  })
  it('leaves a non-number for the server to refuse', () => {
    expect(pushChange({ url: 'https://push.example', token: '', priority: 'high' })).toEqual({ gotify: { url: 'https://push.example', priority: 'high' } })
    expect(pushChange({ url: '', token: 'AbC', priority: '' })).toEqual({ gotify: { url: null, priority: null, token: 'AbC' } })
  })
})

describe('deliveries', () => {
  it('names states and targets in words, never a token', () => {
    expect(deliveryState({ state: 'sent', attempts: 1 })).toEqual({ status: 'ok', label: 'Sent' })
    expect(deliveryState({ state: 'pending', attempts: 2 }).label).toBe('Retrying')
    expect(deliveryState({ state: 'pending', attempts: 0 }).label).toBe('Waiting')
    expect(deliveryState({ state: 'abandoned', attempts: 4 })).toEqual({ status: 'error', label: 'Given up' })
    expect(deliveryTarget({ channel: 'push', target: 'household' })).toBe('Push to the household')
    expect(deliveryTarget({ channel: 'push', target: 'user:3' })).toBe('Push to user #3')
    expect(deliveryTarget({ channel: 'email', target: 'gran@x.org' })).toBe('E-mail to gran@x.org')
    expect(deliveryTarget({ channel: 'webhook', target: '2' })).toBe('Webhook #2')
    expect(eventLabel('missed_call')).toBe('Missed call')
    expect(eventLabel('brand_new')).toBe('Brand new')
  })
})
