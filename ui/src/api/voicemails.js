// Voicemail (src/http/voicemails.rs).
import { get, put, del } from './client.js'

/** @typedef {{ id: number, did_id: number, from_number: string, read: boolean, [k: string]: any }} Voicemail */

/** @returns {Promise<import('./client.js').Paged<Voicemail>>} admin: all */
export const list = (query = {}) => get('/api/voicemails', query)
/** @returns {Promise<{ count: number, [k: string]: any }>} */
export const unread = () => get('/api/voicemails/unread')
export const markRead = (id) => put(`/api/voicemails/${id}/read`)
export const remove = (id) => del(`/api/voicemails/${id}`)
export const audioUrl = (id) => `/api/voicemails/${id}/audio`
