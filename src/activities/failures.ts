import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { BusyError, CarteroError, DependencyUnavailableError, IdentityProviderUnavailableError } from '../errors';

/**
 * The one place that decides how Cartero's errors look to Temporal: input and not-found errors can
 * never succeed on retry, so they fail the activity for good with their class name as the type;
 * dependency outages and a busy process stay retryable (a busy one after the delay it names).
 */
export function toTemporalFailure(err: unknown): unknown {
  if (err instanceof BusyError && err.retryAfterMs !== undefined) {
    // Benign: waiting for a turn is expected (a DEBUG line, no failure metric), not a fault to page on.
    return ApplicationFailure.create({
      type: err.name,
      message: err.message,
      nonRetryable: false,
      nextRetryDelay: err.retryAfterMs,
      category: ApplicationFailureCategory.BENIGN,
    });
  }
  if (err instanceof DependencyUnavailableError || err instanceof IdentityProviderUnavailableError || err instanceof BusyError) {
    return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: false });
  }
  if (err instanceof CarteroError) {
    return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
  }
  return err;
}

/** Wraps every activity so the mapping above applies without each one remembering to. */
export function withFailureMapping<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toTemporalFailure(err);
      }
    };
  }
  return wrapped as T;
}
