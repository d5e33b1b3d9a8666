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
