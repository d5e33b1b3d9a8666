// The notification pages' logic (src/lib/notify.js) and API module
// (src/api/notifications.js): the words for a failed test, the settings and
// preferences bodies (secrets only when typed), and the requests sent.
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as api from '../../src/api/notifications.js'
import {
  REASONS,
  configured,
  emailChange,
  outcomeText,
  prefRows,
  prefsBody,
  pushChange,
  targetText,
} from '../../src/lib/notify.js'
import { navEntries } from '../../src/router/routes.js'

describe('outcomeText', () => {
  it('says delivered with the server detail', () => {
    expect(outcomeText({ delivered: true, detail: '250 2.0.0 queued' })).toEqual({
      ok: true,
      text: 'Delivered. The server said: 250 2.0.0 queued',
    })
  })
  it('explains each reason and keeps the server message', () => {
    const r = outcomeText({ delivered: false, reason: 'auth', message: 'the SMTP server refused the user name or password' })
    expect(r.ok).toBe(false)
    expect(r.text).toBe(`Not delivered. ${REASONS.auth} (the SMTP server refused the user name or password)`)
    for (const reason of ['dns', 'connect', 'tls', 'sender_refused', 'recipient_refused', 'timeout', 'not_configured']) {
      expect(outcomeText({ delivered: false, reason, message: '' }).text).toBe(`Not delivered. ${REASONS[reason]}`)
    }
  })
  it('falls back for an unknown reason', () => {
    expect(outcomeText({ delivered: false, reason: 'martian', message: 'x' }).text).toBe(`Not delivered. ${REASONS.other} (x)`)
  })
})

describe('emailChange', () => {
  const form = (over = {}) => ({
    provider: 'smtp',
    transcriptWait: ' 90 ',
    smtp: { host: ' mail.example.org ', port: '587', security: 'tls', username: '', password: '', from: 'h@example.org' },
    postmark: { server_token: 'pm-token', from: 'p@example.org' },
    ...over,
  })
  it('sends the SMTP fields, clears empty ones and keeps an untyped password', () => {
    expect(emailChange(form())).toEqual({
      notify: { email_provider: 'smtp', transcript_wait_secs: '90' },
      smtp: { host: 'mail.example.org', port: '587', security: 'tls', username: null, from: 'h@example.org' },
    })
  })
  it('sends a typed password verbatim', () => {
    const f = form()
    f.smtp.password = ' pw '
    expect(emailChange(f).smtp.password).toBe(' pw ')
  })
  it('sends the Postmark fields and token, not the SMTP ones', () => {
    expect(emailChange(form({ provider: 'postmark', transcriptWait: '' }))).toEqual({
      notify: { email_provider: 'postmark', transcript_wait_secs: null },
      postmark: { from: 'p@example.org', server_token: 'pm-token' },
    })
  })
  it('turns e-mail off with null and touches no provider', () => {
    expect(emailChange(form({ provider: '' }))).toEqual({ notify: { email_provider: null, transcript_wait_secs: '90' } })
  })
})

describe('pushChange and configured', () => {
  it('keeps the saved token unless one is typed', () => {
    expect(pushChange({ url: 'https://g.example', token: '', priority: '' })).toEqual({ gotify: { url: 'https://g.example', priority: null } })
    expect(pushChange({ url: '', token: 'A1', priority: '7' })).toEqual({ gotify: { url: null, priority: '7', token: 'A1' } })
  })
  it('needs a provider for e-mail and a URL plus a token for push', () => {
    expect(configured({ notify: { email_provider: 'smtp' }, gotify: { url: 'https://g', token_set: false } })).toEqual({ email: true, push: false })
    expect(configured({ notify: {}, gotify: { url: 'https://g', token_set: true } })).toEqual({ email: false, push: true })
    expect(configured(null)).toEqual({ email: false, push: false })
  })
})

describe('preferences', () => {
  const prefs = (alert) => ({
    channels: { email: true, push: false },
    email: { address: null, default_address: 'kim@example.org', events: { voicemail: true, missed_call: false, message: false, ...alert } },
    push: { token_set: false, events: { voicemail: true, missed_call: true, message: true, ...alert } },
  })
  it('shows admin alerts only when the server lists them', () => {
    expect(prefRows(prefs({})).map((r) => r.key)).toEqual(['voicemail', 'missed_call', 'message'])
    expect(prefRows(prefs({ alert: true })).map((r) => r.key)).toEqual(['voicemail', 'missed_call', 'message', 'alert'])
  })
  it('sends the switches and the override, the token only when typed or cleared', () => {
    const p = prefs({})
    expect(prefsBody(p, { address: '  ' })).toEqual({
      email: { address: null, events: p.email.events },
      push: { events: p.push.events },
    })
    expect(prefsBody(p, { address: 'me@x.org', token: 'T' }).push.token).toBe('T')
    expect(prefsBody(p, { clearToken: true }).push).toHaveProperty('token', null)
    expect(prefsBody(p, { token: 'T', clearToken: true }).push.token).toBe('T')
  })
})

describe('targetText', () => {
  it('names push and webhook targets in words', () => {
    expect(targetText({ channel: 'push', target: 'household' })).toBe('Household app')
    expect(targetText({ channel: 'push', target: 'user:3' })).toBe('Account 3’s app')
    expect(targetText({ channel: 'webhook', target: '2' })).toBe('Webhook 2')
    expect(targetText({ channel: 'email', target: 'a@b.c' })).toBe('a@b.c')
  })
})

describe('navigation', () => {
  it('lists Notifications for every account and its settings page for admins', () => {
    expect(navEntries('main', 'user').map((e) => e.path)).toContain('/notifications')
    expect(navEntries('settings', 'admin').map((e) => e.path)).toContain('/settings/notifications')
    expect(navEntries('settings', 'user')).toEqual([])
  })
})

describe('api', () => {
  let sent
  afterEach(() => vi.unstubAllGlobals())
  function stub(body = {}) {
    sent = vi.fn(async () => ({ ok: true, status: 200, headers: { get: () => null }, text: async () => JSON.stringify(body) }))
    vi.stubGlobal('fetch', sent)
  }
  const call = (i) => {
    const [path, init] = sent.mock.calls[i]
    return { path, method: init.method, body: init.body }
  }
  it('sends each request as the server routes expect', async () => {
    stub()
    await api.testEmail('a@b.c')
    await api.testPush()
    await api.deliveries({ limit: 50, before: 9 })
    await api.addWebhook('https://x.example/h', ['voicemail'])
    await api.updateWebhook(4, { enabled: false })
    await api.deleteWebhook(4)
    await api.testWebhook(4)
    await api.saveMyPrefs({ push: { events: {} } })
    expect(call(0)).toEqual({ path: '/api/notifications/test', method: 'POST', body: '{"channel":"email","to":"a@b.c"}' })
    expect(call(1).body).toBe('{"channel":"push"}')
    expect(call(2)).toMatchObject({ path: '/api/notifications?limit=50&before=9', method: 'GET' })
    expect(call(3)).toEqual({ path: '/api/webhooks', method: 'POST', body: '{"url":"https://x.example/h","events":["voicemail"]}' })
    expect(call(4)).toEqual({ path: '/api/webhooks/4', method: 'PUT', body: '{"enabled":false}' })
    expect(call(5)).toMatchObject({ path: '/api/webhooks/4', method: 'DELETE' })
    expect(call(6)).toMatchObject({ path: '/api/webhooks/4/test', method: 'POST' })
    expect(call(7)).toMatchObject({ path: '/api/me/notifications', method: 'PUT' })
  })
})
