import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { apiError } from './api-error.js';
import { bodyProblems } from './body-inspection.js';
import type { FieldProblem } from './field-problem.js';
import { undeclaredMembers } from './undeclared-members.js';

/**
 * Validates request bodies (and GraphQL inputs) with class-validator; a bad body is 400
 * `validation_failed`. Before class-transformer sees a body, which recurses into it and would
 * overflow the stack on a deep one, the body is checked for depth, for strings that cannot be
 * stored as sent, and for members its DTO does not declare, prototype names included.
 */
export class ApiValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors: ValidationError[]) =>
        validationFailed(errors.map((error) => ({ field: error.property, problems: Object.values(error.constraints ?? {}) }))),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.metatype && this.toValidate(metadata)) {
      const shapeProblems = bodyProblems(value);
      if (shapeProblems.length > 0) throw validationFailed(shapeProblems);
      const undeclared = undeclaredMembers(value, metadata.metatype);
      if (undeclared.length > 0) throw validationFailed(undeclared);
    }
    return super.transform(value, metadata);
  }
}

/** The validation pipe of the example API, applied globally. */
export function apiValidationPipe(): ValidationPipe {
  return new ApiValidationPipe();
}

function validationFailed(problems: readonly FieldProblem[]) {
  return apiError(400, 'validation_failed', 'The request body is invalid.', problems);
}
