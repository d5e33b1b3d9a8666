// The doctor's report (src/http/diagnostics.rs, GET /api/diagnostics). Admin only.
import { get } from './client.js'

/**
 * @typedef {'ok'|'warning'|'error'} CheckStatus
 * @typedef {{ id: string, title: string, status: CheckStatus, detail: string, fix: string|null }} Check
 * @typedef {{ status: CheckStatus, ran_at: string, checks: Check[] }} Report
 */

/** Runs every check (at most about 12 s). @returns {Promise<Report>} */
export const run = () => get('/api/diagnostics')
