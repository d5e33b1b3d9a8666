// The household's phone numbers (src/http/dids.rs, greetings.rs).
import { get, put, del } from './client.js'

/** @typedef {{ id: number, number: string, name: string, [k: string]: any }} Did */

/** @returns {Promise<import('./client.js').Paged<Did>>} */
export const list = (query = { per_page: 100 }) => get('/api/dids', query)
export const getDid = (id) => get(`/api/dids/${id}`)
export const setUsers = (id, user_ids) => put(`/api/dids/${id}/users`, { user_ids })
export const uploadGreeting = (id, file) => put(`/api/dids/${id}/greeting`, file)
export const removeGreeting = (id) => del(`/api/dids/${id}/greeting`)
/** @returns {Promise<{ did_id: number, greeting: string|null }>} greeting: a URL to play */
export const greeting = (id) => get(`/api/dids/${id}/greeting`)
