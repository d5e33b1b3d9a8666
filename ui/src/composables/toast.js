// Toasts: short messages shown by ToastHost (mounted once in App.vue).
import { reactive } from 'vue'

/** @type {{ items: { id: number, kind: 'success'|'error', text: string }[] }} */
export const toastState = reactive({ items: [] })
let seq = 0
const LIFETIME_MS = { success: 4000, error: 8000 }

function push(kind, text) {
  const id = ++seq
  toastState.items.push({ id, kind, text })
  setTimeout(() => dismissToast(id), LIFETIME_MS[kind])
  return id
}

export function dismissToast(id) {
  const i = toastState.items.findIndex((t) => t.id === id)
  if (i >= 0) toastState.items.splice(i, 1)
}

/** @returns {{ success: (msg: string) => number, error: (errOrMsg: unknown) => number }} */
export function useToast() {
  return {
    success: (msg) => push('success', String(msg)),
    error: (e) =>
      push('error', typeof e === 'string' ? e : e && e.message ? e.message : 'Something went wrong.'),
  }
}
