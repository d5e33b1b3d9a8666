// Routing rules of a number, caller lists and the "what happens if…"
// simulator (src/http/rules.rs). Admin only, except reading a number's rules.
import { get, post, put, del } from './client.js'

/**
 * @typedef {import('../lib/schedule.js').Schedule} Schedule
 * @typedef {{ type: 'time', schedule: Schedule, outside: boolean }
 *   | { type: 'caller', match: 'exact'|'prefix'|'regex', value: string }
 *   | { type: 'caller_list', list_id: number }
 *   | { type: 'withheld' } | { type: 'spam' } | { type: 'dnd' }
 *   | { type: 'verification', verstat: string[] }} Condition
 * @typedef {{ type: 'ring_all' } | { type: 'ring', devices: number[] }
 *   | { type: 'sequence', steps: { devices: number[], secs: number }[] }
 *   | { type: 'forward', number: string } | { type: 'voicemail' }
 *   | { type: 'reject', reason: 'busy'|'rejected' } | { type: 'play', message: string }} Action
 * @typedef {{ id: number, did_id: number, position: number, name: string, enabled: boolean,
 *   conditions: Condition[], action: Action }} Rule
 * @typedef {{ name: string, enabled: boolean, conditions: Condition[], action: Action }} RuleInput
 * @typedef {{ id: number, name: string, numbers: string[] }} CallerList
 * @typedef {{ action: Action, rule: { id: number, name: string }|null,
 *   default: 'blocklist'|'anonymous'|'no_rules'|null, explanation: string,
 *   rings?: { devices: { id: number, name: string }[], secs: number|null }[] }} Decision
 * @typedef {{ from: string, caller_name: string|null, at: string|null,
 *   spam_score: number|null, verstat: string|null }} SimulatedCall
 */

/** @returns {Promise<{ items: Rule[] }>} ordered by position */
export const list = (didId) => get(`/api/dids/${didId}/rules`)
/** @param {RuleInput} body @returns {Promise<Rule>} appended last */
export const create = (didId, body) => post(`/api/dids/${didId}/rules`, body)
/** @param {RuleInput} body @returns {Promise<Rule>} */
export const update = (id, body) => put(`/api/rules/${id}`, body)
export const remove = (id) => del(`/api/rules/${id}`)
/** @param {number[]} ids  every rule id of the number, first match first @returns {Promise<{ items: Rule[] }>} */
export const reorder = (didId, ids) => put(`/api/dids/${didId}/rules/order`, { ids })
/** @param {SimulatedCall} call @returns {Promise<Decision>} */
export const simulate = (didId, call) => post(`/api/dids/${didId}/simulate`, call)

/** @returns {Promise<{ items: CallerList[] }>} */
export const callerLists = () => get('/api/caller-lists')
/** @param {{ name: string, numbers: string[] }} body @returns {Promise<CallerList>} */
export const createCallerList = (body) => post('/api/caller-lists', body)
/** @param {{ name: string, numbers: string[] }} body @returns {Promise<CallerList>} */
export const updateCallerList = (id, body) => put(`/api/caller-lists/${id}`, body)
export const removeCallerList = (id) => del(`/api/caller-lists/${id}`)
