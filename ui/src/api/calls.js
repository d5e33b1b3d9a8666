// Live calls and call records (src/http/calls.rs).
import { get, post, del, withQuery } from './client.js'

/**
 * @typedef {{ id: number, direction: 'inbound'|'outbound'|'internal', from: string, to: string,
 *   state: 'ringing'|'answered', started_at: string, answered_at: string|null, on_hold: boolean,
 *   device_id: number|null, rtp_received: [number, number], rtp_sent: [number, number] }} LiveCall
 * @typedef {'answered'|'voicemail'|'missed'|'no_answer'|'busy'|'failed'|'canceled'|'blocked'|'rejected'} Disposition
 * @typedef {{ id: number, call_sid: string|null, sip_call_id: string|null,
 *   direction: 'inbound'|'outbound'|'internal', from_number: string, to_number: string,
 *   did_id: number|null, device_id: number|null, started_at: string, answered_at: string|null,
 *   ended_at: string|null, duration_secs: number, disposition: Disposition,
 *   twilio_status: string|null, hangup_cause: string|null, spam_score: number|null }} Cdr
 * @typedef {{ direction?: string, disposition?: string, number?: string, since?: string,
 *   until?: string, limit?: number, cursor?: string }} CdrFilter  since/until RFC 3339
 * @typedef {{ items: Cdr[], next_cursor?: string|null, per_page: number,
 *   page?: number, total?: number }} CdrPage
 */

/** @returns {Promise<{ items: LiveCall[], total: number }>} */
export const live = () => get('/api/calls')
/** Hangs up (BYE, or CANCEL while ringing). @returns {Promise<{ id: number, ended: true }>} */
export const hangUp = (id) => del(`/api/calls/${id}`)
/** Holds (`on`) or resumes an answered call. @returns {Promise<{ id: number, on_hold: boolean }>} */
export const hold = (id, on) => post(`/api/calls/${id}/hold`, { on })
/**
 * Blind transfer to another phone; `to` is its SIP user name. `side` ('a'|'b')
 * is the party replaced (default: the household's phone).
 * @returns {Promise<{ id: number, transferring_to: string }>}
 */
export const transfer = (id, to, side) => post(`/api/calls/${id}/transfer`, side ? { to, side } : { to })
/** @param {CdrFilter} query @returns {Promise<CdrPage>} */
export const cdrs = (query = {}) => get('/api/cdrs', query)
/** The CSV of every record matching `query` (newest first), for a download link. */
export const cdrExportUrl = (query = {}) => withQuery('/api/cdrs/export', query)
