// The navigation guard, as a plain function of the session so that it can be
// tested without a browser. Order: setup first (nothing works before it),
// then the session, then the role.
import { allows, homeFor } from './routes.js'

/**
 * @param {import('vue-router').RouteLocationNormalized} to
 * @param {{ loadSetup: () => Promise<{ setup_completed: boolean, admin_exists?: boolean }>,
 *   load: () => Promise<{ role: string }|null> }} session
 * @returns {Promise<true | string | { path: string, query?: Record<string,string> }>}
 */
export async function guard(to, session) {
  const setup = await session.loadSetup()
  if (!setup.setup_completed && to.name !== 'setup') {
    // Before setup only the wizard is reachable (and login, once an admin
    // exists, so that the wizard can be resumed in a new browser).
    if (!(to.name === 'login' && setup.admin_exists)) return { path: '/setup' }
  }
  if (to.meta && to.meta.public) return true
  const user = await session.load()
  if (!user) {
    return to.fullPath && to.fullPath !== '/'
      ? { path: '/login', query: { next: to.fullPath } }
      : { path: '/login' }
  }
  if (!allows(user.role, to.meta && to.meta.role)) {
    const home = homeFor(user.role)
    return home === to.path ? true : home
  }
  return true
}

/**
 * Where to go after signing in: `next` if it is a path of this app (never
 * another origin), else the account's home.
 */
export function afterLogin(next, role) {
  if (typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login')) {
    return next
  }
  return homeFor(role)
}

/**
 * What a 401 from any API call does: forget the account and, if a signed-in
 * page was open, go to login coming back to it afterwards.
 * @param {{ currentRoute: { value: { fullPath: string, meta: any } }, replace: Function }} router
 * @param {{ user: any, ended: () => void }} session
 */
export function sessionLost(router, session) {
  const wasSignedIn = session.user !== null
  session.ended()
  const here = router.currentRoute.value
  if (wasSignedIn && !(here.meta && here.meta.public)) {
    return router.replace({ path: '/login', query: { next: here.fullPath } })
  }
  return undefined
}
