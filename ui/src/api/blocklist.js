// The blocklist (src/http/blocklist.rs). Admin only.
import { get, post, del } from './client.js'

/**
 * @typedef {'exact'|'prefix'|'regex'} PatternType
 * @typedef {{ id: number, pattern: string, pattern_type: PatternType, reason: string, created_at: string }} BlockEntry
 * @typedef {{ number: string, blocked: boolean, entry: BlockEntry|null }} BlockCheck
 */

/** @returns {Promise<import('./client.js').Paged<BlockEntry>>} newest first */
export const list = (query = {}) => get('/api/blocklist', query)
/** @param {{ pattern: string, pattern_type: PatternType, reason?: string }} body @returns {Promise<BlockEntry>} */
export const add = (body) => post('/api/blocklist', body)
export const remove = (id) => del(`/api/blocklist/${id}`)
/** Whether calls and messages from `number` are refused, and by which entry. @returns {Promise<BlockCheck>} */
export const check = (number) => get('/api/blocklist/check', { number })
