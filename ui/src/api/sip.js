// SIP flood-guard bans (src/http/sip.rs). Admin only.
import { get, del } from './client.js'

/** @typedef {{ ip: string, until: string, reason: string }} Ban  until: RFC 3339 */

/** @returns {Promise<{ items: Ban[] }>} */
export const bans = () => get('/api/sip/bans')
/** Lifts a ban (404 if the address is not banned). @returns {Promise<{ unbanned: string }>} */
export const unban = (ip) => del(`/api/sip/bans/${encodeURIComponent(ip)}`)
