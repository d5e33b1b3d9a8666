// Live calls and call records (src/http/calls.rs).
import { get, post, del } from './client.js'

/**
 * @typedef {{ id: string|number, state: string, [k: string]: any }} LiveCall
 * @typedef {{ id: number, direction: string, disposition: string, started_at: string, [k: string]: any }} Cdr
 */

/** @returns {Promise<{ items: LiveCall[] }>} */
export const live = () => get('/api/calls')
export const hangUp = (id) => del(`/api/calls/${id}`)
export const hold = (id, on) => post(`/api/calls/${id}/hold`, { hold: on })
export const transfer = (id, body) => post(`/api/calls/${id}/transfer`, body)
/** @returns {Promise<{ items: Cdr[], next_cursor?: string|null, per_page: number }>} */
export const cdrs = (query = {}) => get('/api/cdrs', query)
