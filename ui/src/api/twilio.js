// The Twilio account's numbers and SIP login (src/http/twilio_admin.rs). Admin only.
import { get, post } from './client.js'

/**
 * @typedef {{ sid: string, phone_number: string, friendly_name: string, connected?: boolean,
 *   [k: string]: any }} TwilioNumber
 */

/** @returns {Promise<{ items: TwilioNumber[] }>} listed live from Twilio */
export const numbers = () => get('/api/twilio/numbers')
/** Points the number's webhooks at Homeline and adds it as a DID. */
export const connect = (sid) => post(`/api/twilio/numbers/${sid}/connect`)
/** @returns {Promise<{ username: string, password: string, [k: string]: any }>} */
export const sipCredentials = () => get('/api/twilio/sip-credentials')

/**
 * @typedef {'connected'|'connecting'|'failed'|'elsewhere'|'not_connected'|'missing'|'unknown'} ConnectionState
 * @typedef {{ did_id: number, number: string, number_sid: string|null, state: ConnectionState,
 *   detail: string|null, job_id: number|null }} Connection
 * @typedef {{ twilio: 'ok'|'not_configured'|'unreachable', message: string|null, items: Connection[] }} Connections
 */
/** Whether Twilio sends each number's calls and messages here. @returns {Promise<Connections>} */
export const connections = () => get('/api/twilio/connections')
