import { createRouter, createWebHistory } from 'vue-router'
import LoginView from './views/LoginView.vue'
import AppShell from './components/AppShell.vue'
import DashboardView from './views/DashboardView.vue'
import SectionView from './views/SectionView.vue'
import NotFoundView from './views/NotFoundView.vue'
import { sections } from './sections.js'

const routes = [
  { path: '/login', name: 'login', component: LoginView, meta: { title: 'Sign in' } },
  {
    path: '/',
    component: AppShell,
    children: [
      ...sections.map((s) => ({
        path: s.path.slice(1),
        name: s.name,
        component: s.name === 'dashboard' ? DashboardView : SectionView,
        meta: { title: s.title },
      })),
      { path: ':pathMatch(.*)*', name: 'not-found', component: NotFoundView, meta: { title: 'Page not found' } },
    ],
  },
]

const router = createRouter({
  history: createWebHistory(),
  routes,
})

router.afterEach((to) => {
  const title = to.meta.title
  document.title = title && to.name !== 'dashboard' ? `${title} · Homeline` : 'Homeline'
})

export default router
