// The router: public address, forwards, dynamic DNS (src/http/network.rs). Admin only.
import { get, post } from './client.js'

/**
 * @typedef {{ name: 'sip-tls'|'rtp'|'http'|'https', protocol: 'tcp'|'udp', external_first: number,
 *   external_last: number, internal_port: number, status: 'ok'|'refused'|'unsupported'|'off',
 *   detail: string|null, via: 'upnp'|'nat-pmp'|null, expires_at: string|null, updated_at: string|null }} Mapping
 * @typedef {{ public_ip: string|null, source: 'manual'|'nat-pmp'|'upnp'|'stun'|'none', discovery: boolean,
 *   gateway: string|null, methods: { method: string, ip: string|null, error: string|null }[],
 *   checked_at: string|null, changed_at: string|null, auto_forward: boolean, mappings: Mapping[],
 *   ddns: { provider: string|null, name: string|null, ip: string|null, status: 'ok'|'failed'|'off',
 *     error: string|null, updated_at: string|null } }} NetworkState
 */

/** @returns {Promise<NetworkState>} */
export const state = () => get('/api/network')
/** Checks again now (takes up to ~15 s). @returns {Promise<NetworkState>} */
export const refresh = () => post('/api/network/refresh')

/** What a forward is for, in words. */
export const PURPOSE = {
  'sip-tls': 'calls from Twilio (SIP over TLS)',
  rtp: 'the sound of calls (RTP)',
  http: 'the certificate check (HTTP)',
  https: 'Twilio’s webhooks (HTTPS)',
}
/** How a mapping stands, for StatusDot. */
export const DOT = { ok: 'ok', refused: 'error', unsupported: 'warn', off: 'off' }
export const STATUS_TEXT = { ok: 'Open', refused: 'Refused', unsupported: 'Not supported', off: 'Not asked for' }
export const SOURCE_TEXT = {
  manual: 'set by hand',
  'nat-pmp': 'from the router (NAT-PMP)',
  upnp: 'from the router (UPnP)',
  stun: 'from a STUN server',
  none: 'not known',
}
/** "UDP 10000-10199" */
export const ports = (m) =>
  `${m.protocol.toUpperCase()} ${m.external_first === m.external_last ? m.external_first : `${m.external_first}-${m.external_last}`}`
