import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsNotEmpty, IsOptional, IsPositive, IsString, Matches, Max, MaxLength, Min } from 'class-validator';

export class CreatePaymentDto {
  @ApiProperty({ description: 'Amount in minor units (cents).', example: 1999, minimum: 1 })
  @IsInt()
  @IsPositive()
  amount!: number;

  @ApiProperty({ example: 'EUR', pattern: '^[A-Z]{3}$' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be 3 upper-case letters' })
  currency!: string;

  @ApiProperty({ example: 'cus_42', maxLength: 255 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(255)
  customerId!: string;

  /** Time the handler takes after writing the payment: lets demos and tests hold it in flight. */
  @ApiPropertyOptional({ description: 'Milliseconds the handler waits after writing the payment (demos).', minimum: 0, maximum: 10_000 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000)
  processingMs?: number;
}
