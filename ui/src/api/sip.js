// SIP flood-guard bans (src/http/devices.rs). Admin only.
import { get } from './client.js'

/** @typedef {{ ip: string, until: string, reason: string, [k: string]: any }} Ban */

/** @returns {Promise<{ items: Ban[] }>} */
export const bans = () => get('/api/sip/bans')
