// The first-boot wizard (src/http/setup.rs). Public until an admin exists.
import { get, post, put } from './client.js'

/**
 * @typedef {'welcome'|'admin'|'twilio'|'internet'|'numbers'|'phone'|'done'} SetupStep
 * @typedef {{ setup_completed: boolean, twilio_configured: boolean, twilio_skipped: boolean,
 *   household_name: string|null, timezone: string|null, admin_exists: boolean,
 *   step: SetupStep }} SetupStatus  step: the first step not yet done
 * @typedef {{ protocol: 'TCP'|'UDP', ports: string, to_port: string, purpose: string }} ForwardRule
 * @typedef {{ lan_addresses: string[], public_url: string|null, web_port: number,
 *   rules: ForwardRule[] }} NetworkPlan
 */

/** @returns {Promise<SetupStatus>} */
export const status = () => get('/api/setup/status')
/** Step 1. @returns {Promise<SetupStatus>} */
export const saveHousehold = (household_name, timezone) =>
  put('/api/setup/household', { household_name, timezone })
/** Step 2: creates the first administrator and signs in. @returns {Promise<{ user: import('./auth.js').User }>} */
export const createAdmin = (body) => post('/api/setup/admin', body)
/** Step 3: checks the credentials with Twilio, then stores them. @returns {Promise<SetupStatus>} */
export const saveTwilio = (account_sid, auth_token) => put('/api/setup/twilio', { account_sid, auth_token })
/** Step 3, skipped (the dashboard reminds). @returns {Promise<SetupStatus>} */
export const skipTwilio = () => put('/api/setup/twilio', { skip: true })
/** Step 4: what to forward on the router. @returns {Promise<NetworkPlan>} */
export const network = () => get('/api/setup/network')
/** Step 4: the public URL (may be null), marks the step done. @returns {Promise<SetupStatus>} */
export const saveNetwork = (public_url) => put('/api/setup/network', { public_url })
/** Marks a step without its own data (numbers, phone) as done. @returns {Promise<SetupStatus>} */
export const markStep = (step) => put('/api/setup/step', { step })
/** Ends the wizard. @returns {Promise<SetupStatus>} */
export const finish = () => post('/api/setup/finish')
