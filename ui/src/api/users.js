// Accounts (src/http/users.rs). Admin only.
import { get, post, put, del } from './client.js'

/**
 * @typedef {import('./auth.js').User} User
 * @typedef {User & { locked_until?: string|null }} UserRow
 * @typedef {{ email: string, display_name?: string, role: 'admin'|'user', password: string }} NewUser
 * @typedef {{ display_name?: string, role?: 'admin'|'user', password?: string }} UserChange  (the e-mail is fixed)
 */

/** @returns {Promise<import('./client.js').Paged<UserRow>>} */
export const list = (query = {}) => get('/api/users', query)
/** @returns {Promise<UserRow>} */
export const getUser = (id) => get(`/api/users/${id}`)
/** @param {NewUser} body @returns {Promise<User>} */
export const create = (body) => post('/api/users', body)
/** @param {UserChange} body @returns {Promise<User>} a password in it resets the password */
export const update = (id, body) => put(`/api/users/${id}`, body)
/** @returns {Promise<{ deleted: number }>} */
export const remove = (id) => del(`/api/users/${id}`)
/** Lifts the account's login lockout. @returns {Promise<UserRow>} */
export const unlock = (id) => del(`/api/users/${id}/lockout`)
