// SMS auto-replies of a number (src/http/auto_replies.rs). Admin only.
import { get, post, put, del } from './client.js'

/**
 * @typedef {{ type: 'dnd' } | { type: 'after_hours', schedule: import('../lib/schedule.js').Schedule }
 *   | { type: 'keyword', keywords: string[], match: 'exact'|'contains' }} Trigger
 * @typedef {{ id: number, did_id: number, trigger: Trigger, reply_text: string, enabled: boolean }} AutoReply
 * @typedef {{ trigger: Trigger, reply_text: string, enabled: boolean }} AutoReplyInput
 */

/** @returns {Promise<{ items: AutoReply[] }>} */
export const list = (didId) => get(`/api/dids/${didId}/auto-replies`)
/** @param {AutoReplyInput} body @returns {Promise<AutoReply>} */
export const create = (didId, body) => post(`/api/dids/${didId}/auto-replies`, body)
/** @param {AutoReplyInput} body @returns {Promise<AutoReply>} */
export const update = (id, body) => put(`/api/auto-replies/${id}`, body)
export const remove = (id) => del(`/api/auto-replies/${id}`)
