import { HttpException, HttpStatus, UseFilters } from '@nestjs/common';
import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Idempotent } from 'nestjs-idempotency';
import { CurrentAccount } from '../auth/current-account.decorator.js';
import { PaymentsService } from '../payments/payments.service.js';
import { CreatePaymentInput } from './create-payment.input.js';
import { GraphqlErrorsFilter } from './graphql-errors.filter.js';
import { PaymentModel } from './payment.model.js';

/** Payments over GraphQL: the REST API's charge and lookup, scoped to the X-Api-Key's account. */
@Resolver(() => PaymentModel)
@UseFilters(GraphqlErrorsFilter)
export class PaymentsResolver {
  constructor(private readonly payments: PaymentsService) {}

  // Each createPayment field of an operation is its own record (the key plus its response name),
  // so one operation can create several payments under one Idempotency-Key.
  @Mutation(() => PaymentModel, { description: 'Charges a customer. Needs an Idempotency-Key header (a UUID): a retry with the same key and input gets the same answer.' })
  @Idempotent({ required: true })
  async createPayment(@CurrentAccount() account: string, @Args('input') input: CreatePaymentInput): Promise<PaymentModel> {
    return PaymentModel.of(await this.payments.charge(account, input));
  }

  @Query(() => PaymentModel, { nullable: true, description: "One of the caller's payments; null for any other id." })
  async payment(@CurrentAccount() account: string, @Args('id', { type: () => ID }) id: string): Promise<PaymentModel | null> {
    try {
      return PaymentModel.of(await this.payments.findOne(account, id));
    } catch (error) {
      if (error instanceof HttpException && error.getStatus() === HttpStatus.NOT_FOUND) return null;
      throw error;
    }
  }
}
