/**
 * The few assertions the tests use (JSR's @std/assert is out of reach), over node:assert's deep
 * equality.
 *
 * @module
 */
import { deepStrictEqual, ok } from "node:assert";

/** Asserts `actual` deep-equals `expected`. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  deepStrictEqual(actual, expected, msg);
}

/** Asserts `cond` is truthy. */
export function assert(cond: unknown, msg?: string): asserts cond {
  ok(cond, msg);
}
