/**
 * Reading orgplane's errors: a `google.rpc.Status` whose details say what
 * went wrong — a `BadRequest` with one violation per bad field for
 * `INVALID_ARGUMENT`, an `ErrorInfo` with a stable `reason` (domain
 * `orgplane.dev`) for `UNAUTHENTICATED`, `PERMISSION_DENIED`,
 * `FAILED_PRECONDITION` and `ABORTED`.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";

/** The domain of every orgplane `ErrorInfo`. */
export const ERROR_DOMAIN = "orgplane.dev";

/** What a failed call says, decoded. */
export interface Failure {
  code: Code;
  message: string;
  /** `ErrorInfo.reason`, when the error carries one. */
  reason?: string;
  /** `BadRequest` violations: field path → description. */
  fields: Map<string, string>;
}

/** Decodes `error` as orgplane sends it; anything else is rethrown. */
export function decode(error: unknown): Failure {
  if (!(error instanceof ConnectError)) {
    throw error;
  }
  const info = error
    .findDetails(ErrorInfoSchema)
    .find((info) => info.domain === ERROR_DOMAIN);
  const fields = new Map<string, string>();
  for (const bad of error.findDetails(BadRequestSchema)) {
    for (const violation of bad.fieldViolations) {
      fields.set(violation.field, violation.description);
    }
  }
  return { code: error.code, message: error.rawMessage, reason: info?.reason, fields };
}

/** Runs `call`, which must fail, and decodes its error. */
export async function failure(call: () => Promise<unknown>): Promise<Failure> {
  try {
    await call();
  } catch (error) {
    return decode(error);
  }
  throw new Error("the call succeeded but was expected to fail");
}
