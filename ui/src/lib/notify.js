// The logic behind the notification pages (Settings → Notifications, the
// user's Notifications page, the phones' message lamps), kept out of the
// components so it can be unit-tested: what a failed test means in words,
// which settings changed, what a preferences form sends.

/** Why a test was not delivered, for people (the server's `reason`). */
const REASONS = {
  dns: 'The server’s name could not be found. Check the host name (or URL) for typing mistakes.',
  connect: 'Homeline could not connect to the server. Check the host, the port and that the server is running.',
  tls: 'The secure connection failed: the server’s certificate was not accepted or it does not offer TLS on this port. Check the security setting and the port.',
  auth: 'The server refused the user name, password or token.',
  sender_refused: 'The server refused the “From” address. Use an address the account may send from.',
  recipient_refused: 'The server refused the recipient address.',
  timeout: 'The server did not answer within 20 seconds.',
  not_configured: 'This channel is not set up yet: save its settings first.',
  other: 'The server answered with an error.',
}

/**
 * The outcome of a test send in words.
 * @param {import('../api/notifications.js').TestOutcome} r
 * @returns {{ tone: 'ok'|'error', text: string, detail: string }}
 */
export function testOutcome(r) {
  if (r && r.delivered) return { tone: 'ok', text: 'Delivered.', detail: r.detail || '' }
  const reason = (r && r.reason) || 'other'
  return { tone: 'error', text: REASONS[reason] || REASONS.other, detail: (r && r.message) || '' }
}

/** The events a webhook can subscribe to (the server's topic names), in display order. */
export const WEBHOOK_EVENTS = [
  { key: 'voicemail', label: 'New voicemail' },
  { key: 'voicemail_transcript', label: 'Voicemail transcript (when it comes after the voicemail)' },
  { key: 'missed_call', label: 'Missed call' },
  { key: 'message', label: 'Message received' },
  { key: 'message_out', label: 'Message sent' },
  { key: 'alert', label: 'Admin alert' },
]

const EVENT_LABELS = {
  ...Object.fromEntries(WEBHOOK_EVENTS.map((e) => [e.key, e.label])),
  voicemail_transcript: 'Voicemail transcript',
  test: 'Test',
}
/** A topic name in words ("missed_call" → "Missed call"). */
export function eventLabel(topic) {
  if (EVENT_LABELS[topic]) return EVENT_LABELS[topic]
  const t = String(topic || '').replace(/_/g, ' ')
  return t.charAt(0).toUpperCase() + t.slice(1)
}

/** A delivery's state as a StatusDot: pending, sent, abandoned. */
export function deliveryState(row) {
  if (row.state === 'sent') return { status: 'ok', label: 'Sent' }
  if (row.state === 'abandoned') return { status: 'error', label: 'Given up' }
  if (row.state === 'pending' && row.attempts > 0) return { status: 'warn', label: 'Retrying' }
  return { status: 'warn', label: 'Waiting' }
}

/** A delivery's channel and target in words ("Push to everyone", "E-mail to a@b.c"). */
export function deliveryTarget(row) {
  if (row.channel === 'push') {
    if (row.target === 'household') return 'Push to the household'
    const m = /^user:(\d+)$/.exec(row.target || '')
    return m ? `Push to user #${m[1]}` : 'Push'
  }
  if (row.channel === 'email') return `E-mail to ${row.target}`
  if (row.channel === 'webhook') return `Webhook #${row.target}`
  return `${row.channel} ${row.target || ''}`.trim()
}

/** Settings → Notifications: the e-mail providers and SMTP security choices. */
export const PROVIDERS = [
  { value: '', label: 'Off: no e-mail' },
  { value: 'smtp', label: 'An SMTP server' },
  { value: 'postmark', label: 'Postmark' },
]
export const SECURITY = [
  { value: 'starttls', label: 'STARTTLS (usually port 587)' },
  { value: 'tls', label: 'TLS from the start (usually port 465)' },
  { value: 'none', label: 'None (a relay on the home network only)' },
]
export const CHANNEL_LABEL = { email: 'E-mail', push: 'Push', webhook: 'Webhook' }
export const DELIVERY_STATE = {
  pending: { status: 'warn', label: 'Waiting' },
  sent: { status: 'ok', label: 'Sent' },
  abandoned: { status: 'error', label: 'Given up' },
}

const text = (v) => {
  const t = String(v === null || v === undefined ? '' : v).trim()
  return t === '' ? null : t
}
const whole = (v) => {
  const t = text(v)
  return t !== null && /^\d+$/.test(t) ? Number(t) : t
}

/**
 * The PUT /api/system/config body of the e-mail form: every plain field as
 * it stands ('' clears), a secret only when one was typed (write-only: empty
 * keeps the saved one). Numbers go as numbers when they look like one; the
 * server says what is wrong otherwise.
 * @param {{ provider: string, transcriptWait: string, smtp: Record<string, string>, postmark: Record<string, string> }} f
 */
export function emailChange(f) {
  const body = {
    notify: { email_provider: text(f.provider), transcript_wait_secs: whole(f.transcriptWait) },
    smtp: {
      host: text(f.smtp.host),
      port: whole(f.smtp.port),
      security: text(f.smtp.security),
      username: text(f.smtp.username),
      from: text(f.smtp.from),
    },
    postmark: { from: text(f.postmark.from) },
  }
  if (f.smtp.password) body.smtp.password = f.smtp.password
  if (f.postmark.server_token) body.postmark.server_token = f.postmark.server_token
  return body
}

/** The same for the push (Gotify) form. @param {{ url: string, token: string, priority: string }} f */
export function pushChange(f) {
  const body = { gotify: { url: text(f.url), priority: whole(f.priority) } }
  if (f.token) body.gotify.token = f.token
  return body
}

/** outcomeText: testOutcome for the page's notice (`ok` decides its tone). */
export function outcomeText(r) {
  const o = testOutcome(r)
  return { ok: o.tone === 'ok', text: o.detail ? `${o.text} (${o.detail})` : o.text }
}
export const targetText = (row) => deliveryTarget(row)
