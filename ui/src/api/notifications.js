// Notification delivery, for admins (src/http/notifications.rs): the test
// button, the delivery log and the event webhooks.
import { get, post, put, del } from './client.js'

/**
 * @typedef {'dns'|'connect'|'tls'|'auth'|'sender_refused'|'recipient_refused'|'timeout'|'not_configured'|'other'} Reason
 * @typedef {{ delivered: true, detail: string } | { delivered: false, reason: Reason, message: string }} TestOutcome
 * @typedef {{ id: number, channel: 'email'|'push'|'webhook', event: string, target: string, subject: string,
 *   state: 'pending'|'sent'|'abandoned', attempts: number, error: string|null, created_at: string,
 *   sent_at: string|null }} Delivery  push targets are `household` or `user:<id>`, never a token
 * @typedef {{ id: number, url: string, events: string[], enabled: boolean, created_at: string }} Webhook
 */

/**
 * Sends a test e-mail or push at once with the saved settings (20 s limit).
 * @param {'email'|'push'} channel
 * @param {string} [to]  the address, for e-mail
 * @returns {Promise<TestOutcome>}
 */
export const sendTest = (channel, to) => post('/api/notifications/test', channel === 'email' ? { channel, to } : { channel })
/** @param {{ limit?: number, before?: number }} [query] @returns {Promise<{ items: Delivery[] }>} newest first */
export const deliveries = (query = {}) => get('/api/notifications', query)

/** @returns {Promise<{ items: Webhook[] }>} */
export const webhooks = () => get('/api/webhooks')
/** @param {{ url: string, events: string[] }} body @returns {Promise<Webhook & { secret: string }>} the secret only here */
export const addWebhook = (body) => post('/api/webhooks', body)
/** @param {{ url?: string, events?: string[], enabled?: boolean }} change @returns {Promise<Webhook>} */
export const updateWebhook = (id, change) => put(`/api/webhooks/${id}`, change)
export const removeWebhook = (id) => del(`/api/webhooks/${id}`)
/** A `test` event through the outbox. @returns {Promise<{ notification_id: number }>} */
export const testWebhook = (id) => post(`/api/webhooks/${id}/test`)
