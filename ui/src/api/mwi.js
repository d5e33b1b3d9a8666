// The phones' message-waiting lamps (src/http/mwi.rs). Admin only.
import { get } from './client.js'

/**
 * @typedef {{ contact: string, expires_at: string, transport: string }} MwiSubscription
 * @typedef {{ device_id: number, username: string, new: number, old: number,
 *   subscriptions: MwiSubscription[], unsolicited: boolean }} Mailbox
 */

/** @returns {Promise<{ mailboxes: Mailbox[] }>} */
export const mailboxes = () => get('/api/mwi')
