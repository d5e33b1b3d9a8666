// Phones (src/http/devices.rs).
import { get, post, put, del } from './client.js'

/**
 * @typedef {'softphone'|'deskphone'|'ata'|string} DeviceType
 * @typedef {{ id: number, user_id: number|null, name: string, username: string,
 *   device_type: DeviceType, recording_enabled: boolean, created_at: string, updated_at: string }} Device
 * @typedef {{ name: string, username: string, password?: string, device_type?: DeviceType,
 *   user_id?: number|null, recording_enabled?: boolean }} DeviceInput
 * @typedef {{ device_id: number, username: string, password: string, realm: string,
 *   ports: Record<string, number> }} Credentials  ports: sip_udp, sip_tcp, sip_tls…
 * @typedef {{ contact: string, expires_at: string, source: string, transport: 'udp'|'tcp'|'tls',
 *   user_agent: string|null }} Contact
 * @typedef {{ device_id: number, contacts: Contact[] }} Registration
 */

/** @returns {Promise<import('./client.js').Paged<Device>>} */
export const list = (query = { per_page: 100 }) => get('/api/devices', query)
/** @returns {Promise<Device>} */
export const getDevice = (id) => get(`/api/devices/${id}`)
/** @param {DeviceInput} body  without password one is generated @returns {Promise<Device>} */
export const create = (body) => post('/api/devices', body)
/** @param {DeviceInput} body  without password it is unchanged @returns {Promise<Device>} */
export const update = (id, body) => put(`/api/devices/${id}`, body)
/** @returns {Promise<{ deleted: number }>} */
export const remove = (id) => del(`/api/devices/${id}`)
/** @returns {Promise<Credentials>} the SIP login, for setting up the phone */
export const credentials = (id) => get(`/api/devices/${id}/credentials`)
/** Replaces the SIP password with a generated one. @returns {Promise<Credentials>} */
export const regeneratePassword = (id) => post(`/api/devices/${id}/password`)
/** @returns {Promise<{ items: Registration[] }>} only phones with contacts */
export const registrations = () => get('/api/devices/registrations')
