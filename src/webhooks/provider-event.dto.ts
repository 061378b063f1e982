import { IsNotEmpty, IsObject, IsString, Matches, MaxLength } from 'class-validator';

/** An event as the payment provider delivers it. */
export class ProviderEventDto {
  @IsString()
  @Matches(/^evt_[A-Za-z0-9_]{1,200}$/, { message: 'id must look like evt_...' })
  id!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(100)
  type!: string;

  @IsObject()
  data!: Record<string, unknown>;
}
