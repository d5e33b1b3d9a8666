// The client for the Homeline server API; every module in src/api/ uses it.
//
// request(method, path, body) sends JSON with the headers the server expects
// (the X-Requested-With header is the CSRF guard) and returns the parsed JSON
// body of a 2xx response (or null when it is empty). Anything else is thrown
// as an ApiError carrying:
//   .code        server error code (VALIDATION_ERROR, AUTHENTICATION_ERROR,
//                AUTHORIZATION_ERROR, NOT_FOUND, RATE_LIMITED, INTERNAL_ERROR)
//                or NETWORK_ERROR / BAD_RESPONSE / HTTP_ERROR for client-side cases
//   .status      HTTP status (0 when the server could not be reached)
//   .retryAfter  seconds from the Retry-After header, or null
//   .details     error.details from the server, or null
//   .data        the parsed response body, if it was JSON (e.g. a 503 readiness report)

export class ApiError extends Error {
  constructor(message, { code, status = 0, retryAfter = null, details = null, data = null } = {}) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.status = status
    this.retryAfter = retryAfter
    this.details = details
    this.data = data
  }
}

function parseRetryAfter(value) {
  if (!value) return null
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const when = Date.parse(trimmed)
  if (Number.isNaN(when)) return null
  return Math.max(0, Math.ceil((when - Date.now()) / 1000))
}

/**
 * @typedef {{ field: string, message: string }} FieldError  one entry of error.details[]
 * @typedef {{ items: T[], page: number, per_page: number, total: number }} Paged<T>
 * @template T
 */

/** Called (once per failing request) when the server answers 401 to an API call. */
let onUnauthorized = null

/**
 * Registers what a 401 does (the session store ends the session and goes to
 * login). The login call itself is exempt: a wrong password is not a lost session.
 * @param {((err: ApiError) => void) | null} handler
 */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler
}

/**
 * Field messages from an error's `details[]`, keyed by field name, for the
 * form that sent the request. A non-validation error gives `{}`.
 * @param {unknown} err
 * @returns {Record<string, string>}
 */
export function formErrors(err) {
  const out = {}
  const details = err && typeof err === 'object' ? err.details : null
  if (!Array.isArray(details)) return out
  for (const d of details) {
    if (d && typeof d.field === 'string' && typeof d.message === 'string' && !(d.field in out)) {
      out[d.field] = d.message
    }
  }
  return out
}

/** Builds `path?query` from an object, leaving out null/undefined/'' values. */
export function withQuery(path, query = {}) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  }
  const s = q.toString()
  return s ? `${path}?${s}` : path
}

/**
 * Sends one API request; resolves to the parsed JSON body (null when empty).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]  sent as JSON; a FormData or Blob is sent as is
 * @returns {Promise<any>}
 */
export async function request(method, path, body) {
  const headers = {
    Accept: 'application/json',
    'X-Requested-With': 'homeline',
  }
  const init = { method, headers, credentials: 'same-origin' }
  if (body instanceof Blob) {
    headers['Content-Type'] = body.type || 'application/octet-stream'
    init.body = body
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }

  let res
  try {
    res = await fetch(path, init)
  } catch {
    throw new ApiError('Cannot reach the Homeline server. Check your connection and try again.', {
      code: 'NETWORK_ERROR',
    })
  }

  let text = ''
  try {
    text = await res.text()
  } catch {
    throw new ApiError('The connection to the Homeline server was interrupted. Please try again.', {
      code: 'NETWORK_ERROR',
      status: res.status,
    })
  }

  let data = null
  let isJson = false
  if (text !== '') {
    try {
      data = JSON.parse(text)
      isJson = true
    } catch {
      // not JSON; handled below
    }
  }

  if (res.ok) {
    if (text !== '' && !isJson) {
      throw new ApiError(`The server sent an unexpected response (HTTP ${res.status}).`, {
        code: 'BAD_RESPONSE',
        status: res.status,
      })
    }
    return data
  }

  const retryAfter = parseRetryAfter(res.headers.get('Retry-After'))
  const err = data && typeof data === 'object' ? data.error : null
  let thrown
  if (err && typeof err === 'object' && typeof err.message === 'string' && err.message !== '') {
    thrown = new ApiError(err.message, {
      code: typeof err.code === 'string' ? err.code : 'HTTP_ERROR',
      status: res.status,
      retryAfter,
      details: err.details ?? null,
      data,
    })
  } else {
    thrown = new ApiError(
      isJson
        ? `The server reported an error (HTTP ${res.status}).`
        : `The server sent an unexpected response (HTTP ${res.status}).`,
      {
        code: res.status === 429 ? 'RATE_LIMITED' : isJson ? 'HTTP_ERROR' : 'BAD_RESPONSE',
        status: res.status,
        retryAfter,
        data: isJson ? data : null,
      },
    )
  }
  if (res.status === 401 && onUnauthorized && path !== '/api/auth/login') onUnauthorized(thrown)
  throw thrown
}

/** Shorthands. */
export const get = (path, query) => request('GET', withQuery(path, query))
export const post = (path, body) => request('POST', path, body)
export const put = (path, body) => request('PUT', path, body)
export const del = (path) => request('DELETE', path)
