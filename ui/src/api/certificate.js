// The HTTPS certificate (src/http/acme_routes.rs). Admin only.
import { get, post } from './client.js'

/**
 * @typedef {{
 *   name: string|null, enabled: boolean, email: string|null,
 *   state: 'off'|'no_public_name'|'pending'|'working'|'valid'|'failed',
 *   names: string[], issuer: string, self_signed: boolean,
 *   not_before: string, not_after: string, next_renewal: string|null,
 *   retry_at: string|null, last_error: string|null, last_attempt_at: string|null
 * }} Certificate  times: RFC 3339
 */

/** @returns {Promise<Certificate>} */
export const certificate = () => get('/api/certificate')
/** Starts an issuance now (409 when ACME is off or there is no public name). */
export const renew = () => post('/api/certificate/renew')
