import { describe, expect, it } from '@jest/globals';
import { loadSwagger, type SwaggerPackage } from './swagger-package.js';

function failingWith(code: string, message: string): () => Promise<SwaggerPackage> {
  return async () => {
    throw Object.assign(new Error(message), { code });
  };
}

describe('loadSwagger', () => {
  it('loads @nestjs/swagger where it is installed (R25)', async () => {
    const swagger = await loadSwagger();
    expect(typeof swagger?.ApiHeader).toBe('function');
  });

  it('answers undefined when @nestjs/swagger is not installed, in Node\'s words or Jest\'s (R25)', async () => {
    await expect(loadSwagger(failingWith('ERR_MODULE_NOT_FOUND', "Cannot find package '@nestjs/swagger' imported from /app/x.js"))).resolves.toBeUndefined();
    await expect(loadSwagger(failingWith('MODULE_NOT_FOUND', "Cannot find module '@nestjs/swagger' from 'x.ts'"))).resolves.toBeUndefined();
  });

  it('rethrows when swagger is installed but broken, for instance a dependency of its own is missing (R25)', async () => {
    await expect(loadSwagger(failingWith('ERR_MODULE_NOT_FOUND', "Cannot find package 'js-yaml' imported from /app/node_modules/@nestjs/swagger/dist/swagger-module.js"))).rejects.toThrow('js-yaml');
    await expect(loadSwagger(failingWith('ERR_INVALID_ARG', 'something else'))).rejects.toThrow('something else');
  });
});
