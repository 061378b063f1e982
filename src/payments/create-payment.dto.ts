import { IsInt, IsNotEmpty, IsPositive, IsString, Matches, MaxLength } from 'class-validator';

export class CreatePaymentDto {
  @IsInt()
  @IsPositive()
  amount!: number;

  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be 3 upper-case letters' })
  currency!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(255)
  customerId!: string;
}
