import { createApp } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { makeRouter } from './router/index.js'
import { sessionLost } from './router/guards.js'
import { setUnauthorizedHandler } from './api/client.js'
import { useSession } from './stores/session.js'
import './style.css'

const app = createApp(App)
app.use(createPinia())
const router = makeRouter()
app.use(router)

// A 401 anywhere means the session is gone: forget it and go to login,
// coming back to this page afterwards.
setUnauthorizedHandler(() => sessionLost(router, useSession()))

app.mount('#app')
