// The signed-in user's own notification preferences (src/http/notify_prefs.rs).
import { get, put } from './client.js'

/**
 * @typedef {{ voicemail: boolean, missed_call: boolean, message: boolean, alert?: boolean }} EventSwitches
 *   `alert` only for admins
 * @typedef {{ channels: { email: boolean, push: boolean },
 *   email: { address: string|null, default_address: string, events: EventSwitches },
 *   push: { token_set: boolean, events: EventSwitches } }} Prefs
 *   channels: whether the admin has set each one up
 * @typedef {{ email?: { address?: string|null, events?: EventSwitches },
 *   push?: { token?: string|null, events?: EventSwitches } }} PrefsChange
 *   push.token: a string sets it, null clears it, absent keeps it
 */

/** @returns {Promise<Prefs>} */
export const load = () => get('/api/me/notifications')
/** @param {PrefsChange} change @returns {Promise<Prefs>} */
export const save = (change) => put('/api/me/notifications', change)
