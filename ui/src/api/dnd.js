// Do-Not-Disturb: system-wide, per account and per phone (src/http/dnd.rs).
// An admin sees and sets every state; a user their own and their phones'.
import { get, put } from './client.js'

/**
 * @typedef {'system'|'user'|'device'} DndScope
 * @typedef {{ scope: DndScope, subject_id: number, on: boolean,
 *   schedule: import('../lib/schedule.js').Schedule|null, active: boolean }} DndState
 *   on: switched on by hand; active: on, or inside its schedule now
 * @typedef {{ on: boolean, schedule: import('../lib/schedule.js').Schedule|null }} DndInput
 */

/** @returns {Promise<{ items: DndState[] }>} */
export const list = () => get('/api/dnd')
/** @param {DndInput} body @returns {Promise<DndState>} */
export const setSystem = (body) => put('/api/dnd/system', body)
/** @param {DndInput} body @returns {Promise<DndState>} */
export const setUser = (id, body) => put(`/api/users/${id}/dnd`, body)
/** @param {DndInput} body @returns {Promise<DndState>} */
export const setDevice = (id, body) => put(`/api/devices/${id}/dnd`, body)

/** The setter for a scope. */
export function setFor(scope, id, body) {
  if (scope === 'system') return setSystem(body)
  return scope === 'user' ? setUser(id, body) : setDevice(id, body)
}
