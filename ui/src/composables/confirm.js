// A confirm dialog shown by ConfirmDialog (mounted once in App.vue).
import { reactive } from 'vue'

/**
 * @typedef {{ title: string, message?: string, confirmLabel?: string, danger?: boolean }} ConfirmOptions
 */
export const confirmState = reactive({
  open: false,
  /** @type {ConfirmOptions} */
  options: { title: '' },
  /** @type {((ok: boolean) => void) | null} */
  resolve: null,
})

/** Answers the open dialog (called by the dialog). */
export function answerConfirm(ok) {
  const resolve = confirmState.resolve
  confirmState.open = false
  confirmState.resolve = null
  if (resolve) resolve(ok)
}

/** @returns {{ confirm: (o: ConfirmOptions) => Promise<boolean> }} */
export function useConfirm() {
  return {
    confirm(options) {
      // A second request replaces the first, which counts as cancelled.
      if (confirmState.resolve) answerConfirm(false)
      return new Promise((resolve) => {
        confirmState.options = { confirmLabel: 'Confirm', danger: false, ...options }
        confirmState.resolve = resolve
        confirmState.open = true
      })
    },
  }
}
