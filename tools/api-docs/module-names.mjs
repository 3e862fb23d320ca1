// @ts-check
/**
 * A TypeDoc plugin: names each entry point's module after the package it documents
 * (`@sipworks/dum`, `@sipworks/stack/testing`) instead of its path (`dum/src`), so the
 * reference reads as an application imports it.
 */
import { Converter, ReflectionKind } from 'typedoc';

/** `dum/src` -> `@sipworks/dum`; `stack/src/testing` -> `@sipworks/stack/testing`. */
export function packageName(path) {
  const m = /^([\w-]+)\/src(?:\/(.+))?$/.exec(path);
  return m ? `@sipworks/${m[1]}${m[2] ? `/${m[2]}` : ''}` : path;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (_context, reflection) => {
    if (reflection.kindOf(ReflectionKind.Module)) reflection.name = packageName(reflection.name);
  });
}
