import type { Type } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage } from 'class-validator';
import { memberPath, type FieldProblem } from './field-problem.js';

/**
 * Every own member of a body that its DTO does not declare, at any depth of nested DTOs. class-validator's
 * `forbidNonWhitelisted` misses the names of Object.prototype (`constructor`, `toString`,
 * `__proto__`, ...): Nest strips some from the body and class-transformer skips the rest, so they
 * never reach the check. Here they are members like any other. A nested DTO's class is the one
 * class-transformer builds for it (`@Type`); a free-form object (a `Record`) is not checked.
 */
export function undeclaredMembers(body: unknown, metatype: Type<unknown>): FieldProblem[] {
  if (!isObject(body) || Array.isArray(body)) return [];
  const problems: FieldProblem[] = [];
  const pending: Array<{ plain: unknown; instance: unknown; type: Function; path: string }> = [
    { plain: body, instance: plainToInstance(metatype, body), type: metatype, path: '' },
  ];
  while (pending.length > 0) {
    const { plain, instance, type, path } = pending.pop()!;
    if (!isObject(plain) || !isObject(instance)) continue;
    const declared = declaredProperties(type);
    // A class without rules is not a DTO (a free-form object is an Object): nothing to check against.
    if (declared.size === 0) continue;
    for (const name of Object.keys(plain)) {
      const namePath = memberPath(path, name);
      if (!declared.has(name)) {
        problems.push({ field: namePath, problems: [`property ${name} should not exist`] });
        continue;
      }
      const plainMember = (plain as Record<string, unknown>)[name];
      const instanceMember = (instance as Record<string, unknown>)[name];
      if (Array.isArray(plainMember) && Array.isArray(instanceMember)) {
        plainMember.forEach((item, index) => pending.push(nested(item, instanceMember[index], memberPath(namePath, String(index)))));
      } else {
        pending.push(nested(plainMember, instanceMember, namePath));
      }
    }
  }
  return problems;
}

function nested(plain: unknown, instance: unknown, path: string): { plain: unknown; instance: unknown; type: Function; path: string } {
  return { plain, instance, type: isObject(instance) ? instance.constructor : Object, path };
}

/** The properties class-validator knows for a class: those with at least one rule (what its whitelist allows). */
function declaredProperties(type: Function): ReadonlySet<string> {
  return new Set(getMetadataStorage().getTargetValidationMetadatas(type, '', true, false).map((metadata) => metadata.propertyName));
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}
