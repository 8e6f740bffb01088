import type { Context } from '@opentelemetry/api'
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base'

const EXCEPTION_EVENT = 'exception'
const EXCEPTION_TYPE = 'exception.type'

/**
 * Removes the text of errors from every span as it ends, before any exporter
 * sees it. Instrumentations copy an error's message into the span status and
 * exception events, and a message may quote what a caller sent or what is
 * stored (a duplicate key error names the key). The span keeps that it
 * failed and the error's type.
 */
export class ErrorTextRedactor implements SpanProcessor {
  onStart (_span: Span, _parentContext: Context): void {}

  onEnding (span: Span): void {
    if (span.status.message !== undefined) span.setStatus({ code: span.status.code })
    span.events.forEach((event, index) => {
      if (event.name !== EXCEPTION_EVENT) return
      const type = event.attributes?.[EXCEPTION_TYPE]
      // The span API cannot remove an event's attributes, so the event is replaced while the span is still open.
      span.events[index] = { ...event, attributes: type === undefined ? {} : { [EXCEPTION_TYPE]: type } }
    })
  }

  onEnd (_span: ReadableSpan): void {}

  async forceFlush (): Promise<void> {}

  async shutdown (): Promise<void> {}
}
