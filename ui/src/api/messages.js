// SMS/MMS (src/http/messages.rs).
import { get, post, put } from './client.js'

export const conversations = (query = {}) => get('/api/messages/conversations', query)
export const conversation = (number, query = {}) =>
  get(`/api/messages/conversation/${encodeURIComponent(number)}`, query)
export const markConversationRead = (number) =>
  put(`/api/messages/conversation/${encodeURIComponent(number)}/read`)
/** @returns {Promise<{ count: number, [k: string]: any }>} */
export const unreadCount = () => get('/api/messages/unread/count')
export const send = (body) => post('/api/messages', body)
