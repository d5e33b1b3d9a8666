// Health, settings, alerts and the outbox (src/http/health.rs, system.rs).
import { get, post, put, del } from './client.js'

/**
 * @typedef {{ status: string, version: string, uptime_secs: number }} Health
 * @typedef {{ ok: boolean, [k: string]: any }} Check
 * @typedef {{ ready: boolean, checks: { database: Check, storage: Check & { state: string, free_bytes: number, total_bytes: number },
 *   loops: Check & { beats: Record<string, { ok: boolean, last_beat_ms: number }> },
 *   listeners: Check & { bound: Record<string, string> } } }} Readiness
 * @typedef {{ id: number, key: string, message: string, raised_at: string, cleared_at: string|null }} Alert
 */

/** @returns {Promise<Health>} */
export const health = () => get('/health')
/** @returns {Promise<Readiness>} a 503 still carries the report (err.data) */
export async function readiness() {
  try {
    return await get('/api/health/ready')
  } catch (e) {
    if (e && e.data && typeof e.data.ready === 'boolean') return e.data
    throw e
  }
}
/** @returns {Promise<Record<string, Record<string, any>>>} groups twilio, smtp, postmark, gotify, system */
export const config = () => get('/api/system/config')
/** @param {Record<string, Record<string, any>>} changes  null clears a field */
export const saveConfig = (changes) => put('/api/system/config', changes)
/** @returns {Promise<{ items: Alert[] }>} */
export const alerts = () => get('/api/system/alerts')
export const dismissAlert = (id) => del(`/api/system/alerts/${id}`)
/** @returns {Promise<{ items: any[] }>} */
export const outbox = (query = {}) => get('/api/system/outbox', query)
/** Hold music. */
export const holdMusic = () => get('/api/system/hold-music')
export const uploadHoldMusic = (file) => put('/api/system/hold-music', file)
export const resetHoldMusic = () => del('/api/system/hold-music')

/**
 * @typedef {{ id: number, kind: string, payload: any, state: 'pending'|'attempting'|'done'|'failed',
 *   attempts: number, failures: number, next_attempt_at: string|null, last_error: string|null,
 *   created_at: string, updated_at: string }} OutboxJob
 */
/** A failed job (or one waiting out its backoff) is attempted now. @returns {Promise<OutboxJob>} */
export const retryJob = (id) => post(`/api/system/outbox/${id}/retry`)
/** The music that plays, as a WAV; `v` defeats the browser's cache after a change. */
export const holdMusicAudioUrl = (v = 0) => `/api/system/hold-music/audio?v=${v}`

/**
 * @typedef {{ key: string, doc: string, default: string, running: string,
 *   source: 'flag'|'environment'|'config'|'default', saved: string|null, next: string,
 *   pinned: string|null, restart_required: boolean }} StartupSetting
 *   running: in effect now; next: what the next start uses; pinned: the
 *   environment variable that fixes it (then it cannot be changed here)
 */
/** @returns {Promise<{ items: StartupSetting[] }>} */
export const startupSettings = () => get('/api/system/startup-settings')
/** @param {Record<string, string|number|boolean|null>} changes  null: back to the default */
export const saveStartupSettings = (changes) => put('/api/system/startup-settings', changes)
