import { createRouter, createWebHistory } from 'vue-router'
import { routes } from './routes.js'
import { guard } from './guards.js'
import { useSession } from '../stores/session.js'

/** Builds the app's router (history mode; the server answers every path with the app). */
export function makeRouter(history = createWebHistory()) {
  const router = createRouter({ history, routes })
  router.beforeEach((to) => guard(to, useSession()))
  router.afterEach((to) => {
    const title = to.meta.title
    document.title = title && to.name !== 'dashboard' ? `${title} · Homeline` : 'Homeline'
  })
  return router
}
