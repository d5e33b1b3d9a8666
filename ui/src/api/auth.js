// Sign-in, sign-out and the signed-in account (src/http/login.rs).
import { get, post, put } from './client.js'

/**
 * @typedef {'admin'|'user'} Role
 * @typedef {{ id: number, email: string, display_name: string, role: Role,
 *   created_at: string, updated_at: string, last_login_at: string|null }} User
 */

/** @returns {Promise<{ user: User }>} and sets the session cookie */
export const login = (email, password) => post('/api/auth/login', { email, password })
/** @returns {Promise<null>} */
export const logout = () => post('/api/auth/logout')
/** @returns {Promise<{ user: User }>} 401 without a session */
export const me = () => get('/api/me')
/** @returns {Promise<null>} ends the account's other sessions */
export const changePassword = (current_password, new_password) =>
  put('/api/me/password', { current_password, new_password })
