import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Module } from '@nestjs/common';
import { GraphQLModule } from '@nestjs/graphql';
import { PaymentsModule } from '../payments/payments.module.js';
import { operationContext } from './operation-context.js';
import { PaymentsResolver } from './payments.resolver.js';
import { maskUnexpectedErrors } from './unexpected-errors.js';

/** GraphQL for payments at /graphql (code-first, the schema built in memory), on Express or Fastify. */
@Module({
  imports: [
    GraphQLModule.forRoot<ApolloDriverConfig>({
      driver: ApolloDriver,
      path: '/graphql',
      autoSchemaFile: true,
      sortSchema: true,
      context: operationContext,
      // Apollo sends each error's stack trace unless NODE_ENV is production or test; `npm start`
      // sets neither. An API does not send its file paths to clients.
      includeStacktraceInErrorResponses: false,
      formatError: maskUnexpectedErrors,
    }),
    PaymentsModule,
  ],
  providers: [PaymentsResolver],
})
export class PaymentsGraphqlModule {}
