import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { apiError } from './api-error.js';

/** Validates request bodies with class-validator; a bad body is 400 `validation_failed`. */
export function apiValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors: ValidationError[]) =>
      apiError(
        400,
        'validation_failed',
        'The request body is invalid.',
        errors.map((error) => ({ field: error.property, problems: Object.values(error.constraints ?? {}) })),
      ),
  });
}
