import type { ApiPropertyOptions } from '@nestjs/swagger';
import { defaultErrorFormatter, problemJsonErrorFormatter, type IdempotencyErrorFormatter } from '../errors/error-formatter.js';
import type { IdempotencyErrorCode } from '../errors/idempotency.error.js';
import type { SwaggerPackage } from './swagger-package.js';

/** Component names of the refusal bodies (R17) in the OpenAPI document. */
export const ERROR_BODY_SCHEMA = 'IdempotencyErrorBody';
export const PROBLEM_DETAILS_SCHEMA = 'IdempotencyProblemDetails';
const ERROR_DETAIL_SCHEMA = 'IdempotencyErrorDetail';
const ERROR_CODE_SCHEMA = 'IdempotencyErrorCode';

// A record, so that a code added to IdempotencyErrorCode cannot be left out of the enum.
const ERROR_CODES = Object.keys({
  idempotency_key_missing: true,
  invalid_idempotency_key: true,
  idempotency_key_reuse: true,
  idempotency_conflict: true,
  idempotency_unavailable: true,
  idempotency_account_unresolved: true,
  idempotency_body_too_large: true,
  idempotency_body_unreadable: true,
} satisfies Record<IdempotencyErrorCode, true>);

const MESSAGE = { type: 'string', description: 'A sentence for people; it may change.' } as const;

/** The model classes `ApiExtraModels` registers as the two components above. */
interface ErrorBodyModels {
  readonly errorBody: Function;
  readonly problemDetails: Function;
}

// @nestjs/swagger describes components by classes only: these are built once per loaded copy of it.
const modelsBySwagger = new WeakMap<SwaggerPackage, ErrorBodyModels>();

/**
 * The classes of the components a formatter's refusals refer to: `{"error":{"code","message"}}` or
 * its RFC 9457 form, with the contract's codes as an enum (R17). None for an application's own formatter.
 */
export function errorBodyModelsFor(swagger: SwaggerPackage, formatter: IdempotencyErrorFormatter): Function[] {
  if (formatter === defaultErrorFormatter) return [errorBodyModels(swagger).errorBody];
  if (formatter === problemJsonErrorFormatter) return [errorBodyModels(swagger).problemDetails];
  return [];
}

function errorBodyModels(swagger: SwaggerPackage): ErrorBodyModels {
  let models = modelsBySwagger.get(swagger);
  if (!models) {
    models = defineModels(swagger);
    modelsBySwagger.set(swagger, models);
  }
  return models;
}

function defineModels({ ApiProperty }: SwaggerPackage): ErrorBodyModels {
  const code = { enum: ERROR_CODES, enumName: ERROR_CODE_SCHEMA, description: 'The stable contract code: switch on it, never on the message.' };

  const detail = named(ERROR_DETAIL_SCHEMA);
  ApiProperty(code)(detail.prototype, 'code');
  ApiProperty(MESSAGE)(detail.prototype, 'message');

  const errorBody = named(ERROR_BODY_SCHEMA);
  ApiProperty({ type: () => detail })(errorBody.prototype, 'error');

  const problemDetails = named(PROBLEM_DETAILS_SCHEMA);
  const problem = (name: string, options: ApiPropertyOptions) => ApiProperty(options)(problemDetails.prototype, name);
  problem('type', { type: 'string', format: 'uri-reference', description: '`urn:nestjs-idempotency:` and the code.', example: 'urn:nestjs-idempotency:idempotency_conflict' });
  problem('title', { type: 'string', description: 'The code in words.' });
  problem('status', { type: 'integer', description: 'The HTTP status of the answer.' });
  problem('detail', MESSAGE);
  problem('code', code);

  return { errorBody, problemDetails };
}

// The schema takes the class's name, so each class is named after its component.
function named(name: string): Function {
  return { [name]: class {} }[name];
}
